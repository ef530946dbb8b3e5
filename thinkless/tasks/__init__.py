"""Tasks: what a problem is (prompt, gold, how it is graded, its level or class), where its rows come from (local
files, Hub datasets, the built-in synthetic tasks) and the teachers that write paired responses for it."""
