/*
 * test_dict_unix - unix:passwd.byname and unix:group.byname
 * (lib/mail/dict_unix.c) against the system databases, and the proxy:
 * passthrough (lib/mail/dict_proxy.c).  Expected values are built from
 * getpwnam()/getgrnam() in Postfix's format, so the tests run on any
 * machine; the chroot test needs root and is skipped otherwise.
 */
#include "unit.h"

#include <grp.h>
#include <pwd.h>

#include "mail/dict.h"

static DICT *open_ok(const char *spec, int flags)
{
    STRBUF *err = strbuf_alloc(64);
    DICT *d = dict_open(spec, flags, err);

    if (d == NULL)
        fail_msg("dict_open %s: %s", spec, err->data);
    strbuf_free(&err);
    return d;
}

/* dict_open must fail with an error containing 'want'. */
static void open_bad(const char *spec, const char *want)
{
    STRBUF *err = strbuf_alloc(64);
    DICT *d = dict_open(spec, DICT_FLAG_DEFAULT, err);

    if (d != NULL)
        fail_msg("dict_open %s: no error", spec);
    if (strstr(err->data, want) == NULL)
        fail_msg("dict_open %s:\n got \"%s\"\nwant \"%s\"", spec, err->data,
                 want);
    strbuf_free(&err);
}

/* Look key up; expect 'want' (NULL: not found). */
static void assert_lookup(DICT *d, const char *key, const char *want)
{
    const char *value = "untouched";
    int rc = dict_lookup(d, key, &value);

    if (want == NULL) {
        if (rc != DICT_NOTFOUND)
            fail_msg("%s: rc %d, value \"%s\", want not found", key, rc,
                     rc == DICT_FOUND ? value : d->error->data);
        return;
    }
    if (rc != DICT_FOUND)
        fail_msg("%s: rc %d (%s), want \"%s\"", key, rc, d->error->data,
                 want);
    assert_string_equal(value, want);
}

/* Postfix's passwd.byname value for name, from getpwnam(). */
static void passwd_line(const char *name, STRBUF *out)
{
    struct passwd *pw = getpwnam(name);

    if (pw == NULL)
        fail_msg("no user %s on this system", name);
    strbuf_printf(out, "%s:%s:%ld:%ld:%s:%s:%s", pw->pw_name, pw->pw_passwd,
                  (long) pw->pw_uid, (long) pw->pw_gid, pw->pw_gecos,
                  pw->pw_dir, pw->pw_shell);
}

/* Postfix's group.byname value for gr. */
static void group_line(const struct group *gr, STRBUF *out)
{
    strbuf_printf(out, "%s:%s:%ld:", gr->gr_name, gr->gr_passwd,
                  (long) gr->gr_gid);
    for (char **mem = gr->gr_mem; *mem; mem++)
        strbuf_printf_append(out, "%s%s", mem == gr->gr_mem ? "" : ",",
                             *mem);
}

static void test_passwd(void **state)
{
    STRBUF *want = strbuf_alloc(128);
    DICT *d = open_ok("unix:passwd.byname", DICT_FLAG_DEFAULT);

    (void) state;
    assert_string_equal(d->type, "unix");
    assert_string_equal(d->name, "passwd.byname");
    assert_true(d->flags & DICT_FLAG_FIXED);
    assert_null(d->sequence);           /* Postfix cannot list it either */
    passwd_line("root", want);
    /* What "postmap -q root unix:passwd.byname" prints on Debian. */
    assert_true(strncmp(want->data, "root:x:0:0:", 11) == 0);
    assert_lookup(d, "root", want->data);
    assert_lookup(d, "nosuchuser", NULL);
    assert_lookup(d, "nosuchuser-with-a-rather-long-name-0123456789", NULL);
    assert_lookup(d, "", NULL);
    /* Found again after a miss: the value buffer is reused correctly. */
    assert_lookup(d, "root", want->data);
    passwd_line("nobody", want);
    assert_lookup(d, "nobody", want->data);
    dict_close(&d);
    assert_null(d);
    strbuf_free(&want);
}

static void test_folding(void **state)
{
    STRBUF *want = strbuf_alloc(128);
    DICT *d = open_ok("unix:passwd.byname", DICT_FLAG_DEFAULT);
    DICT *exact = open_ok("unix:passwd.byname", 0);

    (void) state;
    passwd_line("root", want);
    /* Postfix folds fixed-key lookups: ROOT finds root. */
    assert_lookup(d, "ROOT", want->data);
    assert_lookup(d, "Root", want->data);
    /* Without folding the key is taken as is: no user "ROOT". */
    assert_ptr_not_equal(d, exact);
    assert_lookup(exact, "root", want->data);
    assert_lookup(exact, "ROOT", NULL);
    dict_close(&d);
    dict_close(&exact);
    strbuf_free(&want);
}

static void test_group(void **state)
{
    STRBUF *want = strbuf_alloc(128);
    DICT *d = open_ok("unix:group.byname", DICT_FLAG_DEFAULT);
    struct group *gr;
    int checked = 0;

    (void) state;
    assert_string_equal(d->name, "group.byname");
    assert_null(d->sequence);
    group_line(getgrnam("root"), want);
    assert_true(strncmp(want->data, "root:x:0:", 9) == 0);
    assert_lookup(d, "root", want->data);
    assert_lookup(d, "ROOT", want->data);
    assert_lookup(d, "nosuchgroup", NULL);

    /* Every group, including those with members ("a,b,c"). */
    setgrent();
    while ((gr = getgrent()) != NULL && checked < 200) {
        STRBUF *key = strbuf_alloc(32);
        struct group *again;

        strbuf_set(key, gr->gr_name);
        strbuf_lower(key);
        group_line(gr, want);
        /* Skip names that fold onto another group, and NSS duplicates. */
        if (strcmp(key->data, gr->gr_name) == 0
            && (again = getgrnam(gr->gr_name)) != NULL
            && again->gr_gid == gr->gr_gid) {
            group_line(gr, want);
            assert_lookup(d, gr->gr_name, want->data);
            checked++;
        }
        strbuf_free(&key);
    }
    endgrent();
    assert_true(checked > 0);
    dict_close(&d);
    strbuf_free(&want);
}

static void test_unsupported_names(void **state)
{
    (void) state;
    open_bad("unix:foo", "unix:foo: unknown table (known: passwd.byname, "
             "group.byname)");
    open_bad("unix:passwd.byuid", "unknown table");
    open_bad("unix:passwd", "unknown table");
    open_bad("unix:", "unknown table");
    open_bad("unix:PASSWD.BYNAME", "unknown table");
    open_bad("unix:passwd.byname ", "unknown table");
}

/*
 * In a chroot with no passwd file, a miss is an error, not "no user",
 * even where NSS (systemd) still makes up a root entry; a hit needs no
 * check.  Until the database has answered, every miss is checked again.
 */
static void chroot_child(void *arg)
{
    static DICT *pw;
    static DICT *gr;
    const char *value;
    int rc;

    (void) arg;
    if (chroot(unit_tmpdir()) < 0 || chdir("/") < 0) {
        fprintf(stderr, "chroot: %s\n", strerror(errno));
        return;
    }
    pw = open_ok("unix:passwd.byname", DICT_FLAG_DEFAULT);
    gr = open_ok("unix:group.byname", DICT_FLAG_DEFAULT);
    for (int i = 0; i < 2; i++) {
        rc = dict_lookup(pw, "nosuchuser", &value);
        fprintf(stderr, "passwd rc=%d error=%s\n", rc, pw->error->data);
    }
    rc = dict_lookup(gr, "nosuchgroup", &value);
    fprintf(stderr, "group rc=%d error=%s\n", rc, gr->error->data);
}

static void test_database_unreadable(void **state)
{
    STRBUF *out = strbuf_alloc(128);
    int status;

    (void) state;
    if (geteuid() != 0) {
        strbuf_free(&out);
        skip();
    }
    status = unit_fork(chroot_child, NULL, out);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (strcmp(out->data,
               "passwd rc=-1 error=unix:passwd.byname: cannot access the "
               "system database: /etc/passwd: No such file or directory\n"
               "passwd rc=-1 error=unix:passwd.byname: cannot access the "
               "system database: /etc/passwd: No such file or directory\n"
               "group rc=-1 error=unix:group.byname: cannot access the "
               "system database: /etc/group: No such file or directory\n")
        != 0)
        fail_msg("child said: %s", out->data);
    strbuf_free(&out);
}

/* --- proxy: ----------------------------------------------------------- */

static void test_proxy_unix(void **state)
{
    STRBUF *want = strbuf_alloc(128);
    DICT *p = open_ok("proxy:unix:passwd.byname", DICT_FLAG_DEFAULT);
    DICT *direct = open_ok("unix:passwd.byname", DICT_FLAG_DEFAULT);
    DICT *again = open_ok("proxy:unix:passwd.byname", DICT_FLAG_DEFAULT);

    (void) state;
    assert_string_equal(p->type, "proxy");
    assert_string_equal(p->name, "unix:passwd.byname");
    assert_true(p->flags & DICT_FLAG_FIXED);
    assert_ptr_equal(p, again);         /* shared like any table */
    assert_ptr_not_equal(p, direct);
    assert_null(p->sequence);
    passwd_line("root", want);
    assert_lookup(p, "root", want->data);
    assert_lookup(p, "ROOT", want->data);
    assert_lookup(p, "nosuchuser", NULL);
    /* Closing in any order leaves the others working. */
    dict_close(&direct);
    assert_lookup(p, "root", want->data);
    dict_close(&p);
    assert_lookup(again, "root", want->data);
    direct = open_ok("unix:passwd.byname", DICT_FLAG_DEFAULT);
    dict_close(&again);
    assert_lookup(direct, "root", want->data);
    dict_close(&direct);
    strbuf_free(&want);
}

static void test_proxy_other_types(void **state)
{
    char spec[512];
    const char *key;
    const char *value;
    const char *path;
    DICT *d;

    (void) state;
    /* Folding and listing are those of the named table. */
    d = open_ok("proxy:inline:{Alpha=1, beta=2}", DICT_FLAG_DEFAULT);
    assert_lookup(d, "ALPHA", "1");
    assert_lookup(d, "gamma", NULL);
    assert_non_null(d->sequence);
    assert_int_equal(d->sequence(d, 1, &key, &value), DICT_FOUND);
    assert_string_equal(key, "alpha");
    assert_string_equal(value, "1");
    assert_int_equal(d->sequence(d, 0, &key, &value), DICT_FOUND);
    assert_int_equal(d->sequence(d, 0, &key, &value), DICT_NOTFOUND);
    dict_close(&d);
    d = open_ok("proxy:static:{fixed value}", DICT_FLAG_DEFAULT);
    assert_lookup(d, "anything", "fixed value");
    dict_close(&d);

    /* A lookup error comes through with its reason. */
    path = unit_write_file("empty.pcre", "/^(a?)b$/ $1\n");
    snprintf(spec, sizeof(spec), "proxy:pcre:%s", path);
    d = open_ok(spec, DICT_FLAG_DEFAULT);
    assert_lookup(d, "ab", "a");
    assert_int_equal(dict_lookup(d, "b", &value), DICT_ERROR);
    assert_non_null(strstr(d->error->data, "the result is empty"));
    dict_close(&d);

    /* Open errors are those of the named table. */
    open_bad("proxy:nosuchtype:x", "unsupported dictionary type: nosuchtype");
    open_bad("proxy:unix:foo", "unix:foo: unknown table");
    open_bad("proxy:", "need type:name");
    open_bad("proxy:pcre:/nonexistent/file", "open /nonexistent/file");
    open_bad("proxy:proxy:unix:passwd.byname", "cannot name another proxy:");
}

/* A surrogate for a bad proxy: table fails every lookup, as others do. */
static void test_proxy_surrogate(void **state)
{
    DICT *d;
    const char *value;

    (void) state;
    unit_log_reset();
    d = dict_open_surrogate("proxy:unix:nosuch", DICT_FLAG_DEFAULT);
    assert_true(d->flags & DICT_FLAG_SURROGATE);
    assert_int_equal(dict_lookup(d, "root", &value), DICT_ERROR);
    assert_true(unit_logged("unix:nosuch: unknown table"));
    dict_close(&d);
    msg_set_hook(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_passwd),
        cmocka_unit_test(test_folding),
        cmocka_unit_test(test_group),
        cmocka_unit_test(test_unsupported_names),
        cmocka_unit_test(test_database_unreadable),
        cmocka_unit_test(test_proxy_unix),
        cmocka_unit_test(test_proxy_other_types),
        cmocka_unit_test(test_proxy_surrogate),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
