"""Tables and figures from stores and runs (`albsent report`, `albsent stats`)."""
