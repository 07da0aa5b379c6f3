"""The statements pgbench runs: its built-in scripts (tpcb-like, simple-update, select-only) and ``pgbench -i``.

Script variables stay as pgbench writes them (``:aid``); ``\\set`` meta-commands
are not SQL and are left out.
"""

from __future__ import annotations

PGBENCH_QUERIES: dict[str, str] = {
    "begin": "BEGIN;",
    "update_accounts": "UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;",
    "select_balance": "SELECT abalance FROM pgbench_accounts WHERE aid = :aid;",
    "update_tellers": "UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;",
    "update_branches": "UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;",
    "insert_history": (
        "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime)"
        " VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);"
    ),
    "end": "END;",
    "init_drop": "drop table if exists pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers",
    "init_history": (
        "create table pgbench_history(tid int,bid int,aid    int,delta int,mtime timestamp,filler char(22))"
    ),
    "init_tellers": (
        "create table pgbench_tellers(tid int not null,bid int,tbalance int,filler char(84)) with (fillfactor=100)"
    ),
    "init_accounts": (
        "create table pgbench_accounts(aid    int not null,bid int,abalance int,filler char(84)) with (fillfactor=100)"
    ),
    "init_branches": (
        "create table pgbench_branches(bid int not null,bbalance int,filler char(88)) with (fillfactor=100)"
    ),
    "init_truncate": "truncate table pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers",
    "init_generate_branches": (
        "insert into pgbench_branches(bid,bbalance) select bid, 0 from generate_series(1, 1) as bid"
    ),
    "init_generate_accounts": (
        "insert into pgbench_accounts(aid,bid,abalance,filler) "
        "select aid, (aid - 1) / 100000 + 1, 0, '' from generate_series(1, 100000) as aid"
    ),
    "init_copy": "copy pgbench_accounts from stdin with (freeze on)",
    "init_vacuum": "vacuum analyze pgbench_branches",
    "init_pk": "alter table pgbench_branches add primary key (bid)",
    "init_fk": (
        "alter table pgbench_accounts add constraint pgbench_accounts_bid_fkey"
        " foreign key (bid) references pgbench_branches"
    ),
}
