"""postern map against Postfix's postmap on the same sources."""
import os
import subprocess

import pytest

from conftest import bin_path

POSTMAP = "/usr/sbin/postmap"

ACCESS_SOURCE = """\
# an access table as an ISP has them
example.com          OK
.sub.example.com     REJECT no subdomains
User@Example.ORG     550 5.7.1 go away
"quoted key"         DUNNO
192.0.2              REJECT
postmaster@          OK
long.example.net     a value with   several   spaces
continued.example    first part
    second part
dup.example          first
dup.example          second
"""

ACCESS_QUERIES = [
    "example.com", "EXAMPLE.COM", ".sub.example.com", "user@example.org",
    "User@Example.ORG", '"quoted key"', "192.0.2", "postmaster@",
    "long.example.net", "continued.example", "dup.example", "missing.example",
    "", "example", "quoted key",
]

PCRE_SOURCE = r"""# header_checks-like table
/^Subject:.*viagra/          REJECT spam subject
/^From:.*<([^@]+)@(example\.com)>/  FILTER smtp:[$2] user=$1 $$literal
!/^Received:/                DUNNO not a Received header
if /^X-/
/^X-Spam-Flag: YES/          HOLD flagged
/^X-(Mailer|Foo): (.*)/i     WARN x $1 $2
endif
/^x-case: Sensitive/i        REPLACE case mattered
/(a)|(b)/                    PREPEND X-Which: [$1][$2]
"""

PCRE_QUERIES = [
    "Subject: buy VIAGRA now", "From: Joe <joe@example.com>",
    "From: Joe <joe@example.org>", "Received: from x", "X-Spam-Flag: YES",
    "X-Mailer: foo 1.0", "X-Foo: bar", "X-other: 1", "x-case: sensitive",
    "X-CASE: Sensitive", "Received: b", "Received: zzz", "",
]


def run(cmd, stdin=None):
    return subprocess.run(cmd, capture_output=True, text=True, input=stdin,
                          timeout=60)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


@pytest.fixture
def two_dirs(tmpdir_path):
    ours, theirs = (os.path.join(tmpdir_path, d) for d in ("ours", "theirs"))
    for d in (ours, theirs):
        os.makedirs(d)
        write(os.path.join(d, "main.cf"), "")
    return ours, theirs


def query_both(ours_dir, theirs_dir, spec_ours, spec_theirs, key):
    a = run([bin_path("postern"), "-c", ours_dir, "map", "-q", key, spec_ours])
    b = run([POSTMAP, "-c", theirs_dir, "-q", key, spec_theirs])
    return (a.returncode, a.stdout), (b.returncode, b.stdout)


def test_lmdb_build_and_query_match_postmap(two_dirs):
    ours, theirs = two_dirs
    for d in two_dirs:
        write(os.path.join(d, "access"), ACCESS_SOURCE)
    a = run([bin_path("postern"), "-c", ours, "map", f"lmdb:{ours}/access"])
    b = run([POSTMAP, "-c", theirs, f"lmdb:{theirs}/access"])
    assert a.returncode == 0, a.stderr
    assert b.returncode == 0, b.stderr
    assert "duplicate entry" in a.stderr and "duplicate entry" in b.stderr
    found = 0
    for key in ACCESS_QUERIES:
        mine, postfix = query_both(ours, theirs, f"lmdb:{ours}/access",
                                   f"lmdb:{theirs}/access", key)
        assert mine == postfix, key
        found += mine[0] == 0
    assert found >= 8
    # Each reads the other's file.
    for key in ACCESS_QUERIES[:6]:
        mine, postfix = query_both(ours, theirs, f"lmdb:{theirs}/access",
                                   f"lmdb:{ours}/access", key)
        assert mine == postfix, key


def test_lmdb_dump_and_stdin_queries(two_dirs):
    ours, theirs = two_dirs
    src = write(os.path.join(ours, "access"), ACCESS_SOURCE)
    run([bin_path("postern"), "-c", ours, "map", f"lmdb:{src}"])
    dump = run([bin_path("postern"), "-c", ours, "map", "-s", f"lmdb:{src}"])
    assert dump.returncode == 0
    assert "example.com\tOK" in dump.stdout.splitlines()
    assert len(dump.stdout.splitlines()) == 9
    res = run([bin_path("postern"), "-c", ours, "map", "-q", "-", f"lmdb:{src}"],
              stdin="example.com\nnothing\npostmaster@\n")
    assert res.stdout == "example.com\tOK\npostmaster@\tOK\n"


def test_lmdb_bad_source_keeps_old_table(two_dirs):
    ours, _ = two_dirs
    src = write(os.path.join(ours, "access"), "a.example OK\n")
    assert run([bin_path("postern"), "-c", ours, "map", f"lmdb:{src}"]).returncode == 0
    write(src, "a.example REJECT\nbroken_line_without_value\n")
    res = run([bin_path("postern"), "-c", ours, "map", f"lmdb:{src}"])
    assert res.returncode != 0 and "line 2" in res.stderr
    res = run([bin_path("postern"), "-c", ours, "map", "-q", "a.example", f"lmdb:{src}"])
    assert res.stdout == "OK\n"


def test_pcre_queries_match_postmap(two_dirs):
    ours, theirs = two_dirs
    src = write(os.path.join(ours, "checks.pcre"), PCRE_SOURCE)
    for key in PCRE_QUERIES:
        mine, postfix = query_both(ours, theirs, f"pcre:{src}", f"pcre:{src}",
                                   key)
        assert mine == postfix, key


def test_query_missing_table_is_not_not_found(two_dirs):
    ours, _ = two_dirs
    res = run([bin_path("postern"), "-c", ours, "map", "-q", "x",
               f"lmdb:{ours}/nonexistent"])
    assert res.returncode == 75 and "nonexistent" in res.stderr


def test_other_table_types(two_dirs):
    ours, _ = two_dirs
    src = write(os.path.join(ours, "th"), "Key1 value one\n")
    cases = [
        ("key1", f"texthash:{src}", 0, "value one\n"),
        ("anything", "static:{ a b }", 0, "a b\n"),
        ("B", "inline:{ a=1, { b = two words } }", 0, "two words\n"),
        ("c", "inline:{ a=1 }", 1, ""),
    ]
    for key, spec, rc, out in cases:
        res = run([bin_path("postern"), "-c", ours, "map", "-q", key, spec])
        assert (res.returncode, res.stdout) == (rc, out), spec
