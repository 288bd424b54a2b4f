"""postern conf against Postfix's postconf on the same main.cf files."""
import glob
import os
import re
import shutil
import subprocess

import pytest

from conftest import DATA, bin_path

POSTCONF = "/usr/sbin/postconf"

# Parameters whose built-in default deliberately differs from Postfix's,
# with the reason.  Every Postern parameter that Postfix also has must be
# either identical under -d or listed here.
DEFAULT_DIFFERENCES = {
    "alias_database": "lmdb:/etc/aliases: Postern has no hash tables",
    "alias_maps": "lmdb:/etc/aliases: Postern has no hash or nis tables",
    "command_directory": "Postern's own install location",
    "compatibility_level": "Postern starts at 3.6 (safe relay defaults)",
    "config_directory": "/etc/postern",
    "daemon_directory": "Postern's own install location",
    "data_directory": "/var/lib/postern",
    "default_database_type": "lmdb: Postern has no hash tables",
    "disable_vrfy_command": "VRFY is off by default in Postern",
    "smtpd_forbid_unauth_pipelining": "yes, as Postfix 3.9 (3.7 says no)",
    "mail_name": "Postern",
    "mail_owner": "postern: Postern's own account",
    "mail_version": "Postern's version",
    "mynetworks": "computed with mynetworks_style host (compatibility level 3.6)",
    "process_name": "the running program",
    "queue_directory": "/var/spool/postern",
    "smtp_sasl_tls_security_options": "noanonymous: PLAIN/LOGIN over TLS",
    "smtp_tls_loglevel": "1: a line per outbound TLS session",
    "smtp_tls_mandatory_protocols": ">=TLSv1.2: modern defaults",
    "smtp_tls_security_level": "may: opportunistic TLS by default",
    "smtpd_tls_auth_only": "yes: no passwords in the clear by default",
    "smtpd_tls_mandatory_protocols": ">=TLSv1.2: modern defaults",
    "smtpd_tls_protocols": ">=TLSv1.2: modern defaults",
    "syslog_name": "postern instead of postfix",
}

SAMPLES = sorted(glob.glob("/usr/share/postfix/main.cf.*")) + [
    os.path.join(DATA, "isp-relay-main.cf")]


def run(cmd):
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return res


def parse(output):
    """'name = value' lines -> dict (value '' for 'name =')."""
    result = {}
    for line in output.splitlines():
        name, _, value = line.partition(" =")
        result[name] = value.strip()
    return result


def postern_known():
    res = run([bin_path("postern"), "-c", "/nonexistent", "conf", "-d", "-H"])
    assert res.returncode == 0, res.stderr
    names = res.stdout.split()
    assert len(names) > 10
    return set(names)


def config_dir_with(tmpdir_path, sample):
    shutil.copy(sample, os.path.join(tmpdir_path, "main.cf"))
    open(os.path.join(tmpdir_path, "master.cf"), "w").close()
    return tmpdir_path


@pytest.mark.parametrize("sample", SAMPLES, ids=os.path.basename)
@pytest.mark.parametrize("flags", ["-n", "-nx"])
def test_conf_n_matches_postconf(tmpdir_path, sample, flags):
    d = config_dir_with(tmpdir_path, sample)
    known = postern_known()
    ours = run([bin_path("postern"), "-c", d, "conf", flags])
    theirs = run([POSTCONF, "-c", d, flags])
    assert ours.returncode == 0, ours.stderr
    assert theirs.returncode == 0, theirs.stderr
    ours_d, theirs_d = parse(ours.stdout), parse(theirs.stdout)
    raw = parse(run([bin_path("postern"), "-c", d, "conf", "-n"]).stdout)
    compared = 0
    for name in sorted(set(ours_d) | set(theirs_d)):
        if name not in known:
            continue
        # Expanded values may pull in a default that differs on purpose.
        if flags == "-nx" and name != "config_directory" and (
                name in DEFAULT_DIFFERENCES
                or any(re.search(r"\$\{?%s\b" % other, raw.get(name, ""))
                       for other in DEFAULT_DIFFERENCES)):
            continue
        assert ours_d.get(name) == theirs_d.get(name), name
        compared += 1
    assert compared >= 1
    # Output lines are sorted and formatted the same way.
    assert ours.stdout.splitlines() == sorted(ours.stdout.splitlines())


def test_conf_n_isp_relay_compares_many(tmpdir_path):
    """The ISP sample really exercises the comparison (not vacuous)."""
    d = config_dir_with(tmpdir_path, os.path.join(DATA, "isp-relay-main.cf"))
    ours = parse(run([bin_path("postern"), "-c", d, "conf", "-n"]).stdout)
    for name in ("myhostname", "mydomain", "recipient_delimiter",
                 "compatibility_level", "maillog_file"):
        assert name in ours
    assert ours["myhostname"] == "relay1.mail.example.net"


def test_conf_d_matches_postconf_or_is_listed():
    known = postern_known()
    ours = parse(run([bin_path("postern"), "-c", "/nonexistent", "conf", "-d"]).stdout)
    theirs = parse(run([POSTCONF, "-d"]).stdout)
    assert set(ours) == known
    for name in sorted(known):
        if name not in theirs:
            continue        # a Postern-only parameter
        if name in DEFAULT_DIFFERENCES:
            continue
        assert ours[name] == theirs[name], name


def test_conf_unknown_parameter_warns(instance):
    instance.write_main_cf(extra="no_such_parameter = 1\nused_macro = x\n"
                           "myorigin_like = $used_macro")
    res = instance.postern("conf", "-n")
    assert "line" in res.stderr and "unknown parameter: no_such_parameter=1" in res.stderr
    assert "unknown parameter: used_macro" not in res.stderr
    assert "unknown parameter: myorigin_like" in res.stderr
    assert "no_such_parameter" not in res.stdout
    res = instance.postern("conf", "nosuch")
    assert res.returncode == 0
    assert "nosuch: unknown parameter" in res.stderr


def test_conf_expansion_forms(instance):
    instance.write_main_cf(extra="\n".join([
        "recipient_delimiter = ${mail_name?{yes}:{no}}",
        "multi_instance_name = ${{$compatibility_level} <level {3.10} ? {old} : {new}}",
        "maillog_file = $$x ${empty_thing:fallback} ${mail_name:no}",
    ]))
    res = instance.postern("conf", "-x", "recipient_delimiter",
                           "multi_instance_name", "maillog_file", "syslog_name")
    assert res.stdout.splitlines() == [
        "recipient_delimiter = yes",
        "multi_instance_name = old",
        "maillog_file = $x fallback",
        "syslog_name = old",
    ]


def test_conf_bad_syntax_names_line(instance):
    instance.write_file("etc/main.cf", "# ok\nmyhostname = a.b.c\nthis is wrong\n")
    res = instance.postern("conf", "-n", check=False)
    assert res.returncode != 0
    assert "main.cf, line 3" in res.stderr


def test_conf_edit_keeps_comments_and_order(instance):
    text = ("# top comment\nmyhostname = x.example.com\n  # interior\n"
            "  continued\nmydomain = example.com\nmyhostname = y.example.com\n"
            "# tail\n")
    path = instance.write_file("etc/main.cf", text)
    shutil.copy(path, path + ".orig")
    res = instance.postern("conf", "-e", "myhostname=z.example.com",
                           "recipient_delimiter = +", "mydomain=")
    with open(path) as f:
        ours = f.read()
    # Same edit with Postfix's postconf on a copy.
    other = os.path.join(instance.root, "pf")
    os.makedirs(other)
    shutil.copy(path + ".orig", os.path.join(other, "main.cf"))
    run([POSTCONF, "-c", other, "-e", "myhostname=z.example.com",
         "recipient_delimiter = +", "mydomain="])
    with open(os.path.join(other, "main.cf")) as f:
        theirs = f.read()
    assert ours == theirs
    assert "multiple entries" in res.stderr


@pytest.mark.parametrize("opt", ["-#", "-X"])
def test_conf_comment_and_delete_like_postconf(instance, opt):
    text = ("a_one = 1\nmyhostname = x.example.com\n  # interior\n"
            "  continued\nmydomain = example.com\n")
    path = instance.write_file("etc/main.cf", text)
    other = os.path.join(instance.root, "pf")
    os.makedirs(other)
    shutil.copy(path, os.path.join(other, "main.cf"))
    instance.postern("conf", opt, "myhostname")
    run([POSTCONF, "-c", other, opt, "myhostname"])
    with open(path) as a, open(os.path.join(other, "main.cf")) as b:
        assert a.read() == b.read()


def test_conf_edit_is_atomic_and_keeps_mode(instance):
    path = instance.write_file("etc/main.cf", "myhostname = a.b.c\n", mode=0o640)
    instance.postern("conf", "-e", "mydomain=b.c")
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert [f for f in os.listdir(instance.config_dir) if ".tmp" in f] == []
    assert instance.postern("conf", "-h", "mydomain").stdout == "b.c\n"


def test_conf_fold(instance):
    long_value = " ".join(f"word{i}" for i in range(40))
    instance.write_main_cf(recipient_delimiter=long_value)
    ours = instance.postern("conf", "-f", "recipient_delimiter").stdout
    theirs = run([POSTCONF, "-c", instance.config_dir, "-f",
                  "recipient_delimiter"]).stdout
    assert ours == theirs
    assert all(len(line) <= 80 for line in ours.splitlines())


MASTER_SAMPLE = """\
smtp      inet  n       -       y       -       -       smtpd
pickup    unix  n       -       y       60      1       pickup
postlog   unix-dgram n  -       n       -       1       postlogd
scalemail-backend unix -  n   n   -   2   pipe
  flags=R user=scalemail argv=/usr/lib/scalemail/bin/scalemail-store ${nexthop} ${user} ${extension}
submission inet n       -       y       -       -       smtpd
  -o syslog_name=postfix/submission
  -o { smtpd_client_restrictions = permit_sasl_authenticated, reject }
  -o smtpd_tls_security_level=encrypt
"""


@pytest.mark.parametrize("flags", ["-M", "-Mf"])
def test_conf_master_print_like_postconf(instance, flags):
    instance.write_file("etc/master.cf", MASTER_SAMPLE)
    ours = instance.postern("conf", flags).stdout
    theirs = run([POSTCONF, "-c", instance.config_dir, flags]).stdout
    assert ours == theirs
    ours = instance.postern("conf", flags, "submission/inet").stdout
    theirs = run([POSTCONF, "-c", instance.config_dir, flags,
                  "submission/inet"]).stdout
    assert ours == theirs and ours.startswith("submission inet")


def test_conf_master_edit(instance):
    path = instance.write_file("etc/master.cf", MASTER_SAMPLE)
    instance.postern("conf", "-M", "pickup/unix=pickup unix n - n 30 1 pickup")
    out = instance.postern("conf", "-M", "pickup/unix").stdout
    assert out.split() == "pickup unix n - n 30 1 pickup".split()
    instance.postern("conf", "-MX", "submission/inet")
    assert "submission" not in instance.postern("conf", "-M").stdout
    with open(path) as f:
        assert "syslog_name" not in f.read()
    res = instance.postern("conf", "-M", "bad/unix=bad unix x - n - - cmd",
                           check=False)
    assert res.returncode != 0 and "bad boolean" in res.stderr


def test_master_cf_errors_name_line(instance):
    instance.write_file("etc/master.cf", "smtp inet n - n - - smtpd\nfoo bogus n - n - - x\n")
    res = instance.postern("conf", "-M", check=False)
    assert res.returncode != 0
    assert "master.cf, line 2: bad transport type: bogus" in res.stderr
