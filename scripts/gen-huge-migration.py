#!/usr/bin/env python3
"""Write a huge migration of many small statements (issue 12: 700,000 statements, ~30 MB).

    python3 scripts/gen-huge-migration.py OUT.sql [STATEMENTS] [MIX]

MIX is `alter` (ALTER TABLE t ADD COLUMN IF NOT EXISTS cN int;, N below 1,500 so the
table stays under PostgreSQL's 1,600 columns and every statement succeeds), `insert`
(INSERT INTO t VALUES (N);), `index` (CREATE INDEX IF NOT EXISTS t_iN ON t (id);, N below
1,500: a lint finding on every statement) or `mix` (the default: the first two alternating).
All but `index` start with a CREATE TABLE; a comment line every 1,000 statements. Deterministic; never commit the output.
"""
import sys


def main() -> None:
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 700_000
    mix = sys.argv[3] if len(sys.argv) > 3 else "mix"
    with open(out, "w", encoding="utf-8") as f:
        if mix != "index":
            f.write("CREATE TABLE IF NOT EXISTS t (id int);\n")
        for i in range(1, n):
            if i % 1000 == 0:
                f.write(f"-- batch {i // 1000}\n")
            if mix == "index":
                f.write(f"CREATE INDEX IF NOT EXISTS t_i{i % 1500} ON t (id);\n")
            elif mix == "alter" or (mix == "mix" and i % 2 == 0):
                f.write(f"ALTER TABLE t ADD COLUMN IF NOT EXISTS c{i % 1500} int;\n")
            else:
                f.write(f"INSERT INTO t VALUES ({i});\n")


if __name__ == "__main__":
    main()
