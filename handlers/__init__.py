"""Telegram handlers, one module per feature. `register_all` wires them in a fixed order:

group -10  track the user/group and pick the language (handlers/core.py)
group -5   membership, admin changes, group migration
group 0    every feature's handlers (conversations first), then core commands, then "unknown command"
group 1000 flush persistence after every update
"""

from __future__ import annotations

import importlib
import warnings
from types import ModuleType

from telegram.ext import Application

from handlers import core
from handlers.common import Command

# Feature modules, in registration order; each has `register(app)` and `COMMANDS`.
# handlers.reports after conversations that accept photos (its quick path starts on any private photo),
# before plain location/photo handlers of other features (its steps wait for a location or photos).
# handlers.tasks before any plain location handler too: its "nearest first" and posting steps wait
# for a location inside their conversations.
FEATURES: tuple[str, ...] = (
    "handlers.broadcast",
    "handlers.meetings",
    "handlers.tasks",
    "handlers.reports",
    "handlers.points",
    "handlers.desk",
    # Last: its plain location/venue/coordinates handlers must not take what a conversation awaits.
    "handlers.stations",
)


def feature_modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in FEATURES]


def all_commands() -> list[Command]:
    commands = list(core.COMMANDS)
    for module in feature_modules():
        commands.extend(getattr(module, "COMMANDS", ()))
    return commands


def register_all(app: Application) -> None:
    # Our conversations track button presses per chat+user on purpose (state in the database).
    warnings.filterwarnings("ignore", message="If 'per_message=False'", category=UserWarning)
    core.register_first(app)
    for module in feature_modules():
        module.register(app)
    core.register(app)
    core.register_last(app)
