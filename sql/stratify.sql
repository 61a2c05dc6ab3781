-- Query-frequency tiers (jobs/stratify.py). Input view: one row per normalised query with its
-- number of searches in the trailing window. Head = the most frequent queries that together
-- cover :head_share of traffic (the query crossing the threshold included) and have at least
-- :head_min_searches searches; tail = fewer than :mid_min_searches; mid = the rest.
WITH ranked AS (
  SELECT
    query_norm,
    query_hash,
    searches,
    CAST(ROW_NUMBER() OVER (ORDER BY searches DESC, query_norm) AS BIGINT) AS rank,
    SUM(searches) OVER () AS total_searches
  FROM {searches}
),
cumulative AS (
  SELECT
    *,
    SUM(searches) OVER (ORDER BY rank ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS searches_so_far
  FROM ranked
)
SELECT
  query_norm,
  query_hash,
  searches,
  CAST(searches AS DOUBLE) / total_searches AS traffic_share,
  CAST(searches_so_far AS DOUBLE) / total_searches AS cumulative_share,
  rank,
  CASE
    WHEN searches_so_far - searches < :head_share * total_searches
         AND searches >= :head_min_searches THEN 'head'
    WHEN searches < :mid_min_searches THEN 'tail'
    ELSE 'mid'
  END AS tier
FROM cumulative
