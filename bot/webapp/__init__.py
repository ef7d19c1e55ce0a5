"""The moderators' desk as a Telegram Mini App: the web server (server.py), the initData check
(auth.py) and the JSON API (api.py), served by the bot process itself. The rules and queries live in
bot/desk.py; this package only speaks HTTP."""
