-- Memories gain an importance (1 mundane .. 10 poignant), which retrieval
-- weighs with recency and relevance (docs/world.md, "Agents that remember").
-- Memories stored before it count as 3, an everyday conversation.

ALTER TABLE memories ADD COLUMN importance INTEGER NOT NULL DEFAULT 3 CHECK (importance BETWEEN 1 AND 10);
