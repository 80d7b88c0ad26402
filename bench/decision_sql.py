#!/usr/bin/env python3
"""Writes bench/decision.sql: the statements of one approved synchronous decision, as veredito
sends them, for pgbench to replay with nothing else running (PostgreSQL's own floor for a
decision, which `bench/run` prints beside its ceiling).

    bench/decision_sql.py SERVER_LOG DATABASE > bench/decision.sql

SERVER_LOG holds PostgreSQL's log of a sandbox service on DATABASE with `log_statement = 'all'`
(`ALTER DATABASE ... SET log_statement = 'all'`, then a restart of the service so its
connections take it) while it decides an approved onboarding, after a first one that paid for
the token exchange; the last decision in the log is the one written. Each statement keeps its text, with its
parameters written in as literals, except what must differ per decision: the onboarding's id
(a pgbench variable from the onboarding's own INSERT), its Idempotency-Key, the process id, the
decision id and the steps' ids, which the script takes from the rows it inserts.
"""

import json
import re
import sys


def records(text, database):
    parts = re.split(r"\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ UTC \[)", text)
    for part in parts:
        found = re.match(rf".*?\[(\d+)\] \S+@{re.escape(database)} (LOG|DETAIL):  (.*)", part, re.S)
        if found:
            yield found.groups()


def unquote(literal):
    """The text of a quoted SQL literal as the log shows it."""
    return literal[1:-1].replace("''", "'")


def stores_onboarding(sql):
    return "INSERT INTO onboardings (id," in sql


def transactions(items):
    """Each explicit transaction, in commit order, as (statement, parameters) pairs; statements
    outside one (the runners' looks at the queue) are left out."""
    open_ = {}
    for i, (backend, kind, body) in enumerate(items):
        if kind != "LOG":
            continue
        params = {}
        if body.startswith("statement: "):
            sql = body[len("statement: "):]
        elif body.startswith("execute "):
            sql = body.split(": ", 1)[1]
            after = items[i + 1] if i + 1 < len(items) else None
            if after and after[0] == backend and after[1] == "DETAIL":
                for n, value in re.findall(r"\$(\d+) = (NULL|'(?:[^']|'')*')", after[2]):
                    params[int(n)] = value
        else:
            continue
        sql = re.sub(r"[ \t]*\n[ \t]*", " ", sql).strip()
        if sql.startswith("BEGIN"):
            open_[backend] = [(sql, params)]
        elif backend in open_:
            open_[backend].append((sql, params))
            if sql == "COMMIT":
                yield open_.pop(backend)


def decisions(items):
    """Each decision: the three transactions that begin with its onboarding's INSERT."""
    found = list(transactions(items))
    for i, first in enumerate(found):
        if len(first) > 1 and stores_onboarding(first[1][0]):
            oid = first[1][1][1]
            mine = [t for t in found[i:] if any(oid in p.values() for _, p in t)][:3]
            if len(mine) == 3:
                yield [statement for t in mine for statement in t]


def values(params, out):
    """Each replay a person of its own: the link keys' hashes ($17, the CPF's also $6) and their
    advisory locks ($15) drawn anew, so the replays neither share values (which would send every
    one through the full lookups and count the ones before it) nor wait on each other's locks."""
    keys = unquote(params[16]).strip("{}").split(",")
    for n in range(1, len(keys) + 1):
        out.insert(n - 1, f"\\set v{n} random(1, 9000000000000000000)")
    hashes = [f"sha256((:v{n})::text::bytea)" for n in range(1, len(keys) + 1)]
    params[15] = "ARRAY[" + ", ".join(f":v{n}::bigint" for n in range(1, len(keys) + 1)) + "]"
    params[17] = "ARRAY[" + ", ".join(hashes) + "]"
    params[6] = hashes[keys.index("cpf")]


def script(statements):
    onboarding = next(p[1] for s, p in statements if stores_onboarding(s))
    oid = onboarding.strip("'")
    out, steps, earlier_steps = [], 0, 0
    for sql, params in statements:
        if sql.startswith("BEGIN"):
            earlier_steps = steps
            # The service sends `BEGIN; SET LOCAL plan_cache_mode = force_generic_plan` in one
            # round trip; pgbench prepares every statement, whose only parameters are ids.
            out.append("BEGIN;")
            continue
        if sql == "COMMIT":
            out.append("COMMIT;")
            continue
        ending = ";"
        if stores_onboarding(sql):
            params[1], params[3] = "gen_random_uuid()", "gen_random_uuid()::text"
            values(params, out)
            ending = " \\gset o_"
        elif sql.startswith("INSERT INTO steps"):
            steps += 1
            ending = f" \\gset s{steps}_"
        elif sql.startswith("INSERT INTO decisions"):
            params[1] = "gen_random_uuid()"
        elif sql.startswith("WITH done AS"):
            # The kept writes at commit (store/tx.rs). The step finished is the one an earlier
            # transaction queued for this one.
            if params.get(1, "NULL") != "NULL":
                params[1] = f":s{earlier_steps}_id"
            # A unico process stored at commit: its id is unique, so each replay takes its
            # onboarding's.
            if params.get(5, "NULL") not in ("NULL", "'[]'"):
                for process in json.loads(unquote(params[5])):
                    params[5] = params[5].replace(process["process_id"], oid)

        def literal(n):
            value = params.get(n, "NULL")
            if value == f"'{oid}'":
                return ":o_id"
            same = re.fullmatch(r"'\{((?:" + oid + r",?)+)\}'", value)
            if same:
                return f"array_fill(:o_id::uuid, ARRAY[{same.group(1).count(oid)}])"
            if oid in value:
                # A JSON document that names the onboarding (pgbench's variables are not
                # replaced inside a quoted literal).
                return f"replace({value}, '{oid}', :o_id::text)"
            return value

        out.append(re.sub(r"\$(\d+)", lambda m: literal(int(m.group(1))), sql) + ending)
    return out


def main():
    log, database = sys.argv[1], sys.argv[2]
    with open(log) as f:
        items = list(records(f.read(), database))
    found = list(decisions(items))
    if not found:
        raise SystemExit(f"no approved decision of database {database} in {log}")
    print("-- One approved synchronous decision's statements, as veredito sends them (three")
    print("-- transactions), written by bench/decision_sql.py from PostgreSQL's log of a sandbox")
    print("-- onboarding. pgbench -M prepared replays it: PostgreSQL's floor for a decision.")
    print("\n".join(script(found[-1])))


if __name__ == "__main__":
    main()
