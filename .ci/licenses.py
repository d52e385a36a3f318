#!/usr/bin/env python3
"""Fails when a crate smsops builds is not under a licence .ci/licenses.txt allows.

It reads `cargo metadata --locked` for the host target and walks from the
workspace members: their normal, build and dev dependencies (the tests'
dev-dependencies are compiled too, so they count), then the normal and build
dependencies of every crate reached. Crates only other platforms would build
are left out.

It checks the dashboard's npm packages the same way, from
dashboard/package-lock.json: every package npm installs for its build,
development tools included, since they run on our machines and theirs.

`python3 .ci/licenses.py` checks the workspace; `--self-test` checks the SPDX
evaluator on its own.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POLICY = Path(__file__).resolve().parent / "licenses.txt"


class SpdxError(ValueError):
    pass


def tokens(expression):
    # crates.io once wrote `MIT/Apache-2.0` for `MIT OR Apache-2.0`.
    return re.findall(r"\(|\)|[^\s()]+", expression.replace("/", " OR "))


def parse(expression):
    """The expression as a tree: ("or"|"and", [terms]), ("with", id, exc) or ("id", id)."""
    items = tokens(expression)
    position = 0

    def peek():
        return items[position] if position < len(items) else None

    def take():
        nonlocal position
        if position >= len(items):
            raise SpdxError(f"{expression!r} ends too early")
        position += 1
        return items[position - 1]

    def keyword(token, word):
        return token is not None and token.upper() == word

    def identifier(token):
        if token in ("(", ")") or keyword(token, "AND") or keyword(token, "OR") or keyword(token, "WITH"):
            raise SpdxError(f"{expression!r}: expected a licence, found {token!r}")
        if not re.fullmatch(r"[A-Za-z0-9.\-]+\+?|LicenseRef-[A-Za-z0-9.\-]+", token):
            raise SpdxError(f"{expression!r}: {token!r} is not a licence id")
        return token

    def term():
        token = take()
        if token == "(":
            inner = either()
            if take() != ")":
                raise SpdxError(f"{expression!r}: unbalanced parentheses")
            return inner
        licence = identifier(token)
        if keyword(peek(), "WITH"):
            take()
            return ("with", licence, identifier(take()))
        return ("id", licence)

    def both():
        terms = [term()]
        while keyword(peek(), "AND"):
            take()
            terms.append(term())
        return terms[0] if len(terms) == 1 else ("and", terms)

    def either():
        terms = [both()]
        while keyword(peek(), "OR"):
            take()
            terms.append(both())
        return terms[0] if len(terms) == 1 else ("or", terms)

    if not items:
        raise SpdxError("empty licence expression")
    tree = either()
    if position != len(items):
        raise SpdxError(f"{expression!r}: unexpected {items[position]!r}")
    return tree


def allowed(tree, licences, exceptions):
    """Whether the tree holds with only the allowed licences (ids compare without case)."""
    kind = tree[0]
    if kind == "or":
        return any(allowed(t, licences, exceptions) for t in tree[1])
    if kind == "and":
        return all(allowed(t, licences, exceptions) for t in tree[1])
    if kind == "with":
        return allowed(("id", tree[1]), licences, exceptions) and tree[2].lower() in exceptions
    # `MPL-2.0+` is "2.0 or later": 2.0 itself may be chosen.
    return tree[1].rstrip("+").lower() in licences


def load_policy(path):
    licences, exceptions, packages = set(), set(), {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        word, _, rest = line.partition(" ")
        rest = rest.strip()
        if word == "allow" and rest:
            licences.add(rest.lower())
        elif word == "exception" and rest:
            exceptions.add(rest.lower())
        elif word == "package" and len(rest.split(None, 1)) == 2:
            name, reason = rest.split(None, 1)
            packages[name] = reason
        else:
            sys.exit(f"{path}:{number}: cannot read {line!r}")
    return licences, exceptions, packages


def host_target():
    rustc = subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True)
    for line in rustc.stdout.splitlines():
        if line.startswith("host: "):
            return line[len("host: "):]
    sys.exit("licenses: rustc -vV names no host target")


def compiled_crates(metadata):
    """Package id -> the path of names from a workspace member that reaches it."""
    nodes = {node["id"]: node for node in metadata["resolve"]["nodes"]}
    members = set(metadata["workspace_members"])
    names = {package["id"]: package["name"] for package in metadata["packages"]}
    reached = {member: [names[member]] for member in members}
    queue = list(members)
    while queue:
        current = queue.pop()
        for dep in nodes[current]["deps"]:
            kinds = {kind["kind"] for kind in dep["dep_kinds"]}
            # A dependency's own dev-dependencies are never compiled for us.
            if current not in members:
                kinds.discard("dev")
            if kinds and dep["pkg"] not in reached:
                reached[dep["pkg"]] = reached[current] + [names[dep["pkg"]]]
                queue.append(dep["pkg"])
    return reached


def check(metadata, policy):
    licences, exceptions, packages = policy
    by_id = {package["id"]: package for package in metadata["packages"]}
    failures = []
    reached = compiled_crates(metadata)
    for package_id, path in sorted(reached.items(), key=lambda item: item[1][-1]):
        package = by_id[package_id]
        name, version, expression = package["name"], package["version"], package["license"]
        if name in packages:
            continue
        where = " -> ".join(path)
        if not expression:
            failures.append(f"{name} {version}: no licence field ({where})")
            continue
        try:
            ok = allowed(parse(expression), licences, exceptions)
        except SpdxError as err:
            failures.append(f"{name} {version}: {err} ({where})")
            continue
        if not ok:
            failures.append(f"{name} {version}: {expression!r} is not allowed ({where})")
    return len(reached), failures


def check_npm(lock, policy):
    """(packages checked, failures) for an npm lock file (lockfileVersion 2 or 3)."""
    licences, exceptions, packages = policy
    failures = []
    entries = {path: entry for path, entry in lock.get("packages", {}).items() if path}
    for path, entry in sorted(entries.items()):
        name = path.rsplit("node_modules/", 1)[-1]
        if name in packages:
            continue
        expression = entry.get("license")
        version = entry.get("version", "?")
        if not isinstance(expression, str) or not expression:
            failures.append(f"{name} {version}: no licence field (npm)")
            continue
        try:
            ok = allowed(parse(expression), licences, exceptions)
        except SpdxError as err:
            failures.append(f"{name} {version}: {err} (npm)")
            continue
        if not ok:
            failures.append(f"{name} {version}: {expression!r} is not allowed (npm)")
    return len(entries), failures


def self_test():
    licences = {"mit", "apache-2.0", "isc"}
    exceptions = {"llvm-exception"}
    cases = {
        "MIT": True,
        "mit": True,
        "GPL-3.0-or-later": False,
        "MIT OR GPL-3.0-or-later": True,
        "GPL-3.0-or-later OR MIT": True,
        "MIT AND GPL-3.0-or-later": False,
        "MIT AND ISC": True,
        "MIT/Apache-2.0": True,
        "GPL-2.0/LGPL-2.1": False,
        "Apache-2.0 WITH LLVM-exception": True,
        "Apache-2.0 WITH LLVM-exception OR Apache-2.0 OR MIT": True,
        "GPL-2.0 WITH Classpath-exception-2.0": False,
        "Apache-2.0 WITH Other-exception": False,
        "(MIT OR Apache-2.0) AND ISC": True,
        "(MIT OR Apache-2.0) AND LGPL-2.1": False,
        "ISC AND (Apache-2.0 OR ISC) AND (MIT OR GPL-2.0)": True,
        "MIT OR LGPL-2.1 AND GPL-2.0": True,  # AND binds tighter than OR
        "LGPL-2.1 AND GPL-2.0 OR MIT": True,
        "LGPL-2.1 AND (GPL-2.0 OR MIT)": False,
        "MIT+": True,
        "LicenseRef-Proprietary": False,
    }
    for expression, expected in cases.items():
        got = allowed(parse(expression), licences, exceptions)
        assert got == expected, f"{expression!r}: {got}, expected {expected}"
    for broken in ["", "MIT OR", "(MIT", "MIT)", "MIT Apache-2.0", "AND MIT", "MIT WITH", "MIT OR OR ISC"]:
        try:
            parse(broken)
        except SpdxError:
            continue
        raise AssertionError(f"{broken!r} parsed")
    # The walk: a dependency's dev-dependencies are left out, ours are not,
    # and a crate without a licence fails unless listed with a reason.
    def package(name, licence):
        return {"id": name, "name": name, "version": "1.0.0", "license": licence}

    def dep(name, kind):
        return {"pkg": name, "dep_kinds": [{"kind": kind, "target": None}]}

    metadata = {
        "workspace_members": ["app"],
        "packages": [
            package("app", "Apache-2.0"),
            package("lib", "MIT"),
            package("tool", "GPL-3.0-only"),
            package("testlib", "LGPL-2.1"),
            package("bare", None),
            package("builder", "ISC"),
        ],
        "resolve": {"nodes": [
            {"id": "app", "deps": [dep("lib", None), dep("testlib", "dev"), dep("builder", "build")]},
            {"id": "lib", "deps": [dep("tool", "dev"), dep("bare", None)]},
            {"id": "tool", "deps": []},
            {"id": "testlib", "deps": []},
            {"id": "bare", "deps": []},
            {"id": "builder", "deps": []},
        ]},
    }
    count, failures = check(metadata, (licences, exceptions, {}))
    assert count == 5, count
    assert [f.split(":")[0] for f in failures] == ["bare 1.0.0", "testlib 1.0.0"], failures
    count, failures = check(metadata, (licences, exceptions, {"bare": "x", "testlib": "y"}))
    assert failures == [], failures
    lock = {"packages": {
        "": {"name": "app"},
        "node_modules/a": {"version": "1.0.0", "license": "MIT"},
        "node_modules/a/node_modules/b": {"version": "2.0.0", "license": "GPL-2.0-only"},
        "node_modules/c": {"version": "1.0.0"},
    }}
    count, failures = check_npm(lock, (licences, exceptions, {}))
    assert count == 3 and [f.split(":")[0] for f in failures] == ["b 2.0.0", "c 1.0.0"], failures
    print(f"licenses: self-test passed ({len(cases)} expressions)")


def main():
    if "--self-test" in sys.argv[1:]:
        self_test()
        return
    self_test()
    policy = load_policy(POLICY)
    command = [
        "cargo", "metadata", "--format-version", "1", "--locked",
        "--filter-platform", host_target(),
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"licenses: cargo metadata failed:\n{result.stderr}")
    count, failures = check(json.loads(result.stdout), policy)
    if failures:
        print(f"licenses: {len(failures)} of {count} crates are not under a licence {POLICY.name} allows:", file=sys.stderr)
        for failure in failures:
            print(f"  {failure}", file=sys.stderr)
        sys.exit(1)
    print(f"licenses: all {count} crates built for {command[-1]} are under allowed licences")
    lock_path = ROOT / "dashboard" / "package-lock.json"
    count, failures = check_npm(json.loads(lock_path.read_text()), policy)
    if failures:
        print(f"licenses: {len(failures)} of {count} npm packages are not under a licence {POLICY.name} allows:", file=sys.stderr)
        for failure in failures:
            print(f"  {failure}", file=sys.stderr)
        sys.exit(1)
    print(f"licenses: all {count} npm packages of the dashboard are under allowed licences")


if __name__ == "__main__":
    main()
