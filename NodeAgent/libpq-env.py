#!/usr/bin/env python3
"""Prints `export PG...=...` lines for an Npgsql connection string, for psql: run-local.sh evaluates them.

Parses the ADO.NET connection string syntax Npgsql accepts: `key=value` pairs separated by `;`, keys in any case
with their usual aliases, values optionally quoted with ' or " (a doubled quote inside stands for one), so that a
password may contain `;`, `=` or quotes.
"""
import shlex
import sys

ALIASES = {"host": "PGHOST", "server": "PGHOST", "port": "PGPORT", "database": "PGDATABASE", "db": "PGDATABASE",
           "username": "PGUSER", "user id": "PGUSER", "userid": "PGUSER", "user": "PGUSER", "uid": "PGUSER",
           "password": "PGPASSWORD", "pwd": "PGPASSWORD", "ssl mode": "PGSSLMODE", "sslmode": "PGSSLMODE",
           "root certificate": "PGSSLROOTCERT"}


def pairs(text):
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " ;\t":
            i += 1
        if i >= n:
            return
        start = i
        while i < n and text[i] != "=":
            i += 1
        key = text[start:i].strip().lower()
        i += 1
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] in "'\"":
            quote, i, value = text[i], i + 1, []
            while i < n:
                if text[i] == quote:
                    if i + 1 < n and text[i + 1] == quote:
                        value.append(quote)
                        i += 2
                        continue
                    i += 1
                    break
                value.append(text[i])
                i += 1
            value = "".join(value)
            while i < n and text[i] != ";":
                i += 1
        else:
            start = i
            while i < n and text[i] != ";":
                i += 1
            value = text[start:i].strip()
        yield key, value


for key, value in pairs(sys.argv[1]):
    name = ALIASES.get(key)
    if name == "PGSSLMODE":
        value = {"verifyca": "verify-ca", "verifyfull": "verify-full"}.get(value.lower(), value.lower())
    if name:
        print(f"export {name}={shlex.quote(value)}")
