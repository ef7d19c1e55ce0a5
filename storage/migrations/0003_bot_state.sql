-- Small facts the bot keeps about itself between runs (e.g. a digest of the command menus it last
-- registered with Telegram, so an unchanged menu is not sent again at every start).
CREATE TABLE bot_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
