/*
 * test_params - the parameter table and params_load() (lib/mail/params.c,
 * lib/mail/param_list.h).
 *
 * params_load_r() is run on main.cf files under unit_tmpdir(); the typed
 * conversions that no table parameter uses yet (bool, int, time) are
 * tested through param_convert() with PARAM_DEFs made here.
 */
#include "unit.h"

#include <errno.h>
#include <limits.h>
#include <sys/stat.h>

#include "mail/params.h"
#include "util/htable.h"

/* A fresh config directory DIR/name holding main.cf with text. */
static const char *conf_dir(const char *name, const char *text)
{
    static char dir[256];
    char path[300];
    FILE *fp;

    snprintf(dir, sizeof(dir), "%s/%s", unit_tmpdir(), name);
    (void) mkdir(dir, 0700);
    if (text != NULL) {
        snprintf(path, sizeof(path), "%s/main.cf", dir);
        if ((fp = fopen(path, "w")) == NULL || fputs(text, fp) < 0
            || fclose(fp) != 0)
            fail_msg("cannot write %s", path);
    }
    return dir;
}

static void load_ok(const char *dir, const ARGV *overrides)
{
    STRBUF *err = strbuf_alloc(64);

    if (params_load_r(dir, overrides, 0, err) != 0)
        fail_msg("params_load_r: %s", err->data);
    strbuf_free(&err);
}

/* Load that must fail; returns the error (caller frees). */
static char *load_bad(const char *dir, const ARGV *overrides, int flags)
{
    STRBUF *err = strbuf_alloc(64);

    assert_int_equal(params_load_r(dir, overrides, flags, err), -1);
    assert_true(err->len > 0);
    return strbuf_export(&err);
}

static void assert_contains(const char *text, const char *part)
{
    if (strstr(text, part) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", text, part);
}

static ARGV *argv_of(const char *first, ...)
{
    ARGV *argv = argv_alloc(4);
    va_list ap;

    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        argv_add(argv, s);
    va_end(ap);
    return argv;
}

/* --- the table -------------------------------------------------------- */

static void test_table(void **state)
{
    STRBUF *err = strbuf_alloc(64);
    STRBUF *value = strbuf_alloc(64);
    PARAM_CTX *ctx = param_ctx_alloc(NULL);

    (void) state;
    assert_true(param_table_size > 10);
    for (size_t i = 0; i < param_table_size; i++) {
        const PARAM_DEF *def = &param_table[i];

        /* Sorted, valid names, findable, documented. */
        if (i > 0 && strcmp(param_table[i - 1].name, def->name) >= 0)
            fail_msg("not sorted: %s, %s", param_table[i - 1].name,
                     def->name);
        assert_true(maincf_valid_name(def->name, strlen(def->name)));
        assert_ptr_equal(param_find(def->name), def);
        assert_non_null(def->doc);
        assert_non_null(def->var);
        if (def->type == PARAM_FN) {
            assert_null(def->defval);
            assert_non_null(def->def_fn);
        } else {
            assert_non_null(def->defval);
        }
        /* Every numeric default is valid for its type and range, once
         * expanded (some are expressions, as in Postfix). */
        if (def->type != PARAM_STR && def->type != PARAM_RAW
            && def->type != PARAM_FN
            && (param_expand(ctx, def->defval, value, err) != 0
                || param_convert(def, value->data, "default", err) != 0))
            fail_msg("%s: %s", def->name, err->data);
    }
    param_ctx_free(&ctx);
    strbuf_free(&value);
    assert_null(param_find("no_such_parameter"));
    assert_null(param_find(""));
    assert_null(param_find("MAIL_NAME"));
    strbuf_free(&err);
}

/* --- params_load_r ---------------------------------------------------- */

static void test_load_values_and_defaults(void **state)
{
    const char *dir;

    (void) state;
    unit_log_reset();
    dir = conf_dir("load1", "# comment\n"
                   "mail_name = Example Mail\n"
                   "queue_directory = /var/spool/example\n"
                   "lmdb_map_size = 1048576\n"
                   "recipient_delimiter = +-\n");
    load_ok(dir, NULL);
    assert_string_equal(var_mail_name, "Example Mail");
    assert_string_equal(var_queue_directory, "/var/spool/example");
    assert_int_equal(var_lmdb_map_size, 1048576);
    assert_string_equal(var_recipient_delimiter, "+-");
    /* Defaults for what main.cf leaves out. */
    assert_string_equal(var_compatibility_level, "3.6");
    assert_string_equal(var_default_database_type, "lmdb");
    assert_string_equal(var_maillog_file, "");
    assert_string_equal(var_daemon_directory, DEF_DAEMON_DIR);
    assert_string_equal(var_data_directory, DEF_DATA_DIR);
    assert_string_equal(var_mail_version, POSTERN_VERSION);
    assert_string_equal(var_syslog_name, "postern");
    assert_int_equal(var_max_idle, 100);
    assert_int_equal(var_max_use, 100);
    assert_int_equal(var_default_process_limit, 100);
    assert_int_equal(var_stop_grace_time, 10);
    assert_int_equal(var_service_throttle_time, 60);

    /* A second load starts again from the defaults. */
    dir = conf_dir("load2", "mail_name = Second\n");
    load_ok(dir, NULL);
    assert_string_equal(var_mail_name, "Second");
    assert_string_equal(var_queue_directory, DEF_QUEUE_DIR);
    assert_int_equal(var_lmdb_map_size, 16777216);
    assert_string_equal(var_recipient_delimiter, "");
}

static void test_load_typed(void **state)
{
    const char *dir;
    ARGV *over;

    (void) state;
    dir = conf_dir("typed", "max_idle = 5m\n"
                   "max_use = 7\n"
                   "stop_grace_time = 0\n"
                   "service_throttle_time = 1d\n"
                   "idle = 2h\n"
                   "default_process_limit = $max_use\n");
    load_ok(dir, NULL);
    assert_int_equal(var_max_idle, 300);
    assert_int_equal(var_max_use, 7);
    assert_int_equal(var_stop_grace_time, 0);
    assert_int_equal(var_service_throttle_time, 86400);
    assert_int_equal(var_default_process_limit, 7);

    /* A bare number takes the parameter's unit; overrides are typed too. */
    over = argv_of("max_idle=$idle", "max_use=99999", NULL);
    load_ok(dir, over);
    assert_int_equal(var_max_idle, 7200);
    assert_int_equal(var_max_use, 99999);
    assert_int_equal(var_default_process_limit, 99999);
    argv_free(&over);
}

static void test_load_overrides(void **state)
{
    const char *dir;
    ARGV *over;
    char *why;

    (void) state;
    dir = conf_dir("over", "mail_name = FromMain\n"
                   "queue_directory = /q\n"
                   "extra = from-main\n");
    over = argv_of("mail_name=Override", "lmdb_map_size = 4096",
                   "recipient_delimiter=$extra", NULL);
    load_ok(dir, over);
    assert_string_equal(var_mail_name, "Override");
    assert_string_equal(var_queue_directory, "/q");
    assert_int_equal(var_lmdb_map_size, 4096);
    assert_string_equal(var_recipient_delimiter, "from-main");
    argv_free(&over);

    /* The later of two overrides wins. */
    over = argv_of("mail_name=one", "mail_name=two", NULL);
    load_ok(dir, over);
    assert_string_equal(var_mail_name, "two");
    argv_free(&over);

    /* A bad override is an error. */
    over = argv_of("mail_name", NULL);
    why = load_bad(dir, over, 0);
    assert_contains(why, "missing '='");
    assert_contains(why, "mail_name");
    free(why);
    argv_free(&over);

    over = argv_of("lmdb_map_size=lots", NULL);
    why = load_bad(dir, over, 0);
    assert_contains(why, "override lmdb_map_size=lots: bad numerical "
                    "configuration: lmdb_map_size = lots");
    free(why);
    argv_free(&over);
}

static void test_load_expansion(void **state)
{
    const char *dir;
    ARGV *over;

    (void) state;
    dir = conf_dir("expand", "data_directory = /d\n"
                   "queue_directory = ${data_directory}/queue\n"
                   "mail_name = $my_name $$literal $(undefined_name)x\n"
                   "my_name = Postern $mail_version\n"
                   "process_name = $not_expanded\n"
                   "multi_instance_name = inst1\n"
                   "maillog_file = ${multi_instance_name?/var/log/"
                   "$multi_instance_name.log}\n");
    load_ok(dir, NULL);
    assert_string_equal(var_queue_directory, "/d/queue");
    assert_string_equal(var_mail_name, "Postern " POSTERN_VERSION
                        " $literal x");
    assert_string_equal(var_process_name, "$not_expanded");   /* P_RAW */
    assert_string_equal(var_syslog_name, "inst1");      /* the default */
    assert_string_equal(var_maillog_file, "/var/log/inst1.log");

    /* An override that main.cf values refer to. */
    over = argv_of("data_directory=/other", NULL);
    load_ok(dir, over);
    assert_string_equal(var_queue_directory, "/other/queue");
    argv_free(&over);
}

static void test_load_expansion_error(void **state)
{
    const char *dir;
    char *why;

    (void) state;
    dir = conf_dir("loop", "a = b\n"
                   "mail_name = x${mail_name}\n");
    why = load_bad(dir, NULL, 0);
    assert_contains(why, "/loop/main.cf, line 2: mail_name: ");
    free(why);

    dir = conf_dir("loop2", "mail_name = $x\nx = $y\ny = $x\n");
    why = load_bad(dir, NULL, 0);
    assert_contains(why, "/loop2/main.cf, line 1: mail_name: ");
    free(why);
}

static void test_load_config_directory_forced(void **state)
{
    const char *dir;

    (void) state;
    dir = conf_dir("cfdir", "config_directory = /somewhere/else\n"
                   "mail_name = $config_directory\n");
    load_ok(dir, NULL);
    assert_string_equal(var_config_directory, dir);
    assert_string_equal(var_mail_name, dir);
}

static void test_load_type_errors(void **state)
{
    const char *dir;
    char *why;

    (void) state;
    dir = conf_dir("type1", "mail_name = x\n"
                   "\n"
                   "lmdb_map_size = 12abc\n");
    why = load_bad(dir, NULL, 0);
    assert_contains(why, "/type1/main.cf, line 3: bad numerical "
                    "configuration: lmdb_map_size = 12abc");
    free(why);

    dir = conf_dir("type2", "lmdb_map_size =\n   0\n");
    why = load_bad(dir, NULL, 0);
    assert_contains(why, "/type2/main.cf, line 1: invalid lmdb_map_size "
                    "parameter value 0: must be in the range "
                    "1..1099511627776");
    free(why);

    dir = conf_dir("type3", "lmdb_map_size = 99999999999999999999999\n");
    why = load_bad(dir, NULL, 0);
    assert_contains(why, "line 1: bad numerical configuration");
    free(why);

    /* After expansion. */
    dir = conf_dir("type4", "size = 2x\nlmdb_map_size = $size\n");
    why = load_bad(dir, NULL, 0);
    assert_contains(why, "/type4/main.cf, line 2: bad numerical "
                    "configuration: lmdb_map_size = 2x");
    free(why);

    dir = conf_dir("type5", "# x\nmax_idle = 5x\n");
    why = load_bad(dir, NULL, 0);
    assert_contains(why, "/type5/main.cf, line 2: bad time configuration: "
                    "max_idle = 5x (use a number with an optional s, m, h, "
                    "d or w suffix)");
    free(why);

    dir = conf_dir("type6", "stop_grace_time = 2h\n");
    why = load_bad(dir, NULL, 0);
    assert_contains(why, "/type6/main.cf, line 1: invalid stop_grace_time "
                    "parameter value 2h: must be in the range 0..3600");
    free(why);

    dir = conf_dir("type7", "max_use = 0\n");
    why = load_bad(dir, NULL, 0);
    assert_contains(why, "/type7/main.cf, line 1: invalid max_use parameter "
                    "value 0: must be in the range 1..1000000000");
    free(why);

    dir = conf_dir("type8", "max_use = -1\n");
    why = load_bad(dir, NULL, 0);
    assert_contains(why, "line 1: invalid max_use parameter value -1");
    free(why);

    dir = conf_dir("type9", "max_use = 4294967297\n");
    why = load_bad(dir, NULL, 0);
    assert_contains(why, "line 1: invalid max_use parameter value "
                    "4294967297");
    free(why);

    /* Syntax errors name the line too. */
    dir = conf_dir("syntax", "mail_name = x\nnot a setting\n");
    why = load_bad(dir, NULL, 0);
    assert_contains(why, "/syntax/main.cf, line 2: missing '='");
    free(why);
}

static void test_load_missing_main_cf(void **state)
{
    STRBUF *err = strbuf_alloc(64);
    const char *dir;
    char *why;

    (void) state;
    dir = conf_dir("empty-dir", NULL);
    why = load_bad(dir, NULL, 0);
    assert_contains(why, "empty-dir/main.cf");
    assert_contains(why, "No such file");
    free(why);

    /* With PARAMS_FLAG_MISSING_OK: the defaults. */
    assert_int_equal(params_load_r(dir, NULL, PARAMS_FLAG_MISSING_OK, err), 0);
    assert_string_equal(var_mail_name, "Postern");
    assert_string_equal(var_config_directory, dir);
    assert_int_equal(var_lmdb_map_size, 16777216);
    /* ... and overrides still apply. */
    {
        ARGV *over = argv_of("mail_name=Over", NULL);

        assert_int_equal(params_load_r(dir, over, PARAMS_FLAG_MISSING_OK,
                                       err), 0);
        assert_string_equal(var_mail_name, "Over");
        argv_free(&over);
    }
    /* A directory that does not exist at all. */
    strbuf_printf(err, "%s/no/such/dir", unit_tmpdir());
    {
        char *nodir = strbuf_export(&err);

        err = strbuf_alloc(64);
        assert_int_equal(params_load_r(nodir, NULL, PARAMS_FLAG_MISSING_OK,
                                       err), 0);
        assert_string_equal(var_config_directory, nodir);
        free(nodir);
    }

    /* MISSING_OK does not excuse a broken main.cf. */
    dir = conf_dir("broken", "garbage\n");
    why = load_bad(dir, NULL, PARAMS_FLAG_MISSING_OK);
    assert_contains(why, "/broken/main.cf, line 1: missing '='");
    free(why);
    dir = conf_dir("broken-nul", NULL);
    {
        char path[300];
        FILE *fp;

        snprintf(path, sizeof(path), "%s/main.cf", dir);
        fp = fopen(path, "w");
        assert_non_null(fp);
        fwrite("a = 1\nb = \0\n", 1, 12, fp);
        fclose(fp);
    }
    why = load_bad(dir, NULL, PARAMS_FLAG_MISSING_OK);
    assert_contains(why, "/broken-nul/main.cf, line 2: NUL byte in input");
    free(why);

    /* An unreadable main.cf (a directory) is not "missing" either. */
    dir = conf_dir("isdir", NULL);
    {
        char path[300];

        snprintf(path, sizeof(path), "%s/main.cf", dir);
        assert_int_equal(mkdir(path, 0700), 0);
    }
    why = load_bad(dir, NULL, PARAMS_FLAG_MISSING_OK);
    assert_contains(why, "/isdir/main.cf");
    free(why);
    strbuf_free(&err);
}

/* A load that fails changes no variable; CHECK_ONLY never changes any. */
static void test_load_all_or_nothing(void **state)
{
    const char *dir;
    char *why;
    STRBUF *err = strbuf_alloc(64);

    (void) state;
    dir = conf_dir("good", "mail_name = Good\nmax_idle = 1m\n");
    load_ok(dir, NULL);
    dir = conf_dir("half-bad", "mail_name = Changed\n"
                   "max_idle = 2m\n"
                   "stop_grace_time = forever\n");
    why = load_bad(dir, NULL, 0);
    assert_contains(why, "line 3: bad time configuration");
    free(why);
    assert_string_equal(var_mail_name, "Good");
    assert_int_equal(var_max_idle, 60);

    dir = conf_dir("check-only", "mail_name = Checked\nmax_idle = 3m\n");
    assert_int_equal(params_load_r(dir, NULL, PARAMS_FLAG_CHECK_ONLY, err), 0);
    assert_string_equal(var_mail_name, "Good");
    assert_int_equal(var_max_idle, 60);
    why = load_bad(conf_dir("half-bad", NULL), NULL, PARAMS_FLAG_CHECK_ONLY);
    assert_contains(why, "line 3: bad time configuration");
    free(why);
    assert_string_equal(var_mail_name, "Good");
    strbuf_free(&err);
}

static void load_fatal_child(void *arg)
{
    msg_set_hook(NULL);
    msg_init("test_params", MSG_STDERR);
    params_load(arg, NULL, 0);
}

static void test_load_fatal(void **state)
{
    STRBUF *err = strbuf_alloc(64);
    int status;

    (void) state;
    status = unit_fork(load_fatal_child,
                       (void *) conf_dir("fatal", "max_use = many\n"), err);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    assert_contains(err->data, "test_params: fatal: ");
    assert_contains(err->data, "/fatal/main.cf, line 1: bad numerical "
                    "configuration: max_use = many");
    strbuf_free(&err);
}

static void test_load_oversized(void **state)
{
    STRBUF *text = strbuf_alloc(1024 * 1024 + 64);
    STRBUF *err = strbuf_alloc(128);
    const char *dir;

    (void) state;
    /* Large values load; an expansion past 1 MiB is refused. */
    strbuf_cat(text, "mail_name = ");
    for (int i = 0; i < 300 * 1024; i++)
        strbuf_addch(text, 'm');
    strbuf_cat(text, "\nrecipient_delimiter = $mail_name$mail_name\n");
    dir = conf_dir("big", text->data);
    load_ok(dir, NULL);
    assert_int_equal(strlen(var_mail_name), 300 * 1024);
    assert_int_equal(strlen(var_recipient_delimiter), 2 * 300 * 1024);
    strbuf_cat(text, "multi_instance_name = $recipient_delimiter"
               "$recipient_delimiter\n");
    dir = conf_dir("bigger", text->data);
    assert_int_equal(params_load_r(dir, NULL, 0, err), -1);
    assert_non_null(strstr(err->data, "longer than"));
    strbuf_free(&text);
    strbuf_free(&err);
}

static void test_config_dir_choice(void **state)
{
    const char *dir;

    (void) state;
    unsetenv("POSTERN_CONFIG_DIR");
    assert_string_equal(params_config_dir("/x"), "/x");
    assert_string_equal(params_config_dir(NULL), DEF_CONFIG_DIR);
    assert_string_equal(params_config_dir(""), DEF_CONFIG_DIR);
    setenv("POSTERN_CONFIG_DIR", "/from/env", 1);
    assert_string_equal(params_config_dir(NULL), "/from/env");
    assert_string_equal(params_config_dir(""), "/from/env");
    assert_string_equal(params_config_dir("/x"), "/x");
    setenv("POSTERN_CONFIG_DIR", "", 1);
    assert_string_equal(params_config_dir(NULL), DEF_CONFIG_DIR);

    /* params_load_r(NULL) reads the directory named in the environment. */
    dir = conf_dir("envdir", "mail_name = FromEnv\n");
    setenv("POSTERN_CONFIG_DIR", dir, 1);
    load_ok(NULL, NULL);
    assert_string_equal(var_mail_name, "FromEnv");
    assert_string_equal(var_config_directory, dir);
    unsetenv("POSTERN_CONFIG_DIR");

    /* params_load() is the same, fatal on errors. */
    dir = conf_dir("fatal-ok", "mail_name = Fatal OK\n");
    params_load(dir, NULL, 0);
    assert_string_equal(var_mail_name, "Fatal OK");
}

/* --- computed defaults ------------------------------------------------ */

static void test_myhostname_mydomain(void **state)
{
    char host[256];
    STRBUF *want = strbuf_alloc(64);
    const char *dir;

    (void) state;
    /* Not configured: from the system host name. */
    assert_int_equal(gethostname(host, sizeof(host)), 0);
    host[sizeof(host) - 1] = 0;
    strbuf_set(want, host);
    if (strchr(host, '.') == NULL)
        strbuf_cat(want, ".localdomain");
    strbuf_lower(want);
    dir = conf_dir("host0", "");
    load_ok(dir, NULL);
    assert_string_equal(var_myhostname, want->data);
    assert_non_null(strchr(var_myhostname, '.'));
    {
        const char *dot = strchr(var_myhostname, '.');

        if (strchr(dot + 1, '.'))
            assert_string_equal(var_mydomain, dot + 1);
        else
            assert_string_equal(var_mydomain, "localdomain");
    }

    dir = conf_dir("host1", "myhostname = mx.example.com\n");
    load_ok(dir, NULL);
    assert_string_equal(var_myhostname, "mx.example.com");
    assert_string_equal(var_mydomain, "example.com");

    dir = conf_dir("host2", "myhostname = a.b\n");
    load_ok(dir, NULL);
    assert_string_equal(var_mydomain, "localdomain");

    dir = conf_dir("host3", "myhostname = nodots\n");
    load_ok(dir, NULL);
    assert_string_equal(var_mydomain, "localdomain");

    dir = conf_dir("host4", "myhostname = a.b.c.example.net\n");
    load_ok(dir, NULL);
    assert_string_equal(var_mydomain, "b.c.example.net");

    /* Configured mydomain wins; myhostname may use it. */
    dir = conf_dir("host5", "mydomain = example.org\n"
                   "myhostname = mail.$mydomain\n");
    load_ok(dir, NULL);
    assert_string_equal(var_mydomain, "example.org");
    assert_string_equal(var_myhostname, "mail.example.org");

    /* An override of myhostname moves the mydomain default along. */
    {
        ARGV *over = argv_of("myhostname=smtp.example.info", NULL);

        dir = conf_dir("host6", "myhostname = a.b\n");
        load_ok(dir, over);
        assert_string_equal(var_mydomain, "example.info");
        argv_free(&over);
    }
    strbuf_free(&want);
}

/*
 * "myhostname = host.$mydomain" without a mydomain: the mydomain default
 * is computed from myhostname, which refers to mydomain.  That must be an
 * answer (or an error), not endless recursion.
 */
static void test_computed_default_loop(void **state)
{
    const char *dir;

    (void) state;
    dir = conf_dir("hostloop", "myhostname = host.$mydomain\n");
    load_ok(dir, NULL);
    assert_string_equal(var_mydomain, "localdomain");
    assert_string_equal(var_myhostname, "host.localdomain");

    dir = conf_dir("hostloop2", "myhostname = $mydomain\n");
    load_ok(dir, NULL);
    assert_string_equal(var_mydomain, "localdomain");
    assert_string_equal(var_myhostname, "localdomain");
}

/* --- the context ------------------------------------------------------ */

static MAINCF *maincf_of(const char *text)
{
    MAINCF *cf = maincf_alloc("/cf/main.cf");
    STRBUF *err = strbuf_alloc(64);

    if (maincf_parse(cf, text, strlen(text), err) != 0)
        fail_msg("%s", err->data);
    strbuf_free(&err);
    return cf;
}

static void test_ctx_raw_and_origin(void **state)
{
    MAINCF *cf = maincf_of("mail_name = Main\n\nuser_param = u\n");
    PARAM_CTX *ctx = param_ctx_alloc(cf);
    STRBUF *out = strbuf_alloc(64);
    STRBUF *err = strbuf_alloc(64);

    (void) state;
    assert_string_equal(param_raw(ctx, "mail_name"), "Main");
    assert_string_equal(param_raw(ctx, "user_param"), "u");
    assert_string_equal(param_raw(ctx, "syslog_name"),
                        "${multi_instance_name?{$multi_instance_name}:"
                        "{postern}}");
    assert_null(param_raw(ctx, "undefined_param"));
    param_origin(ctx, "mail_name", out);
    assert_string_equal(out->data, "/cf/main.cf, line 1");
    param_origin(ctx, "user_param", out);
    assert_string_equal(out->data, "/cf/main.cf, line 3");
    param_origin(ctx, "queue_directory", out);
    assert_string_equal(out->data, "default for queue_directory");

    assert_int_equal(param_ctx_override(ctx, "mail_name = Over ride",
                                        "-o", err), 0);
    assert_string_equal(param_raw(ctx, "mail_name"), "Over ride");
    param_origin(ctx, "mail_name", out);
    assert_string_equal(out->data, "override mail_name=Over ride");
    assert_int_equal(param_ctx_override(ctx, "bad-name=x", "-o", err), -1);
    assert_string_equal(err->data, "-o: bad parameter name: \"bad-name=x\"");
    assert_int_equal(param_ctx_override(ctx, "novalue", "test", err), -1);
    assert_string_equal(err->data, "test: missing '=' after parameter "
                        "name: \"novalue\"");

    /* Expansion against the context. */
    assert_int_equal(param_expand(ctx, "[$mail_name|${user_param}|$nope]",
                                  out, err), 0);
    assert_string_equal(out->data, "[Over ride|u|]");

    /* defaults_only: main.cf and overrides are ignored. */
    ctx->defaults_only = 1;
    assert_string_equal(param_raw(ctx, "mail_name"), "Postern");
    assert_null(param_raw(ctx, "user_param"));
    param_origin(ctx, "mail_name", out);
    assert_string_equal(out->data, "default for mail_name");

    /* A default with no main.cf at all. */
    param_ctx_free(&ctx);
    assert_null(ctx);
    param_ctx_free(&ctx);
    ctx = param_ctx_alloc(NULL);
    assert_string_equal(param_raw(ctx, "mail_name"), "Postern");
    assert_string_equal(param_default(ctx, param_find("mail_version")),
                        POSTERN_VERSION);
    param_ctx_free(&ctx);
    maincf_free(&cf);
    strbuf_free(&out);
    strbuf_free(&err);
}

/* A computed default follows an override made after it was first used. */
static void test_ctx_computed_default_after_override(void **state)
{
    MAINCF *cf = maincf_of("myhostname = a.one.example\n");
    PARAM_CTX *ctx = param_ctx_alloc(cf);
    STRBUF *err = strbuf_alloc(64);

    (void) state;
    assert_string_equal(param_raw(ctx, "mydomain"), "one.example");
    assert_int_equal(param_ctx_override(ctx, "myhostname=b.two.example",
                                        "-o", err), 0);
    assert_string_equal(param_raw(ctx, "mydomain"), "two.example");
    param_ctx_free(&ctx);
    maincf_free(&cf);
    strbuf_free(&err);
}

static void test_referenced_names(void **state)
{
    MAINCF *cf = maincf_of("a = ${r1?{$r2}:{lit}} $(r3) $$notref ${r4:x}\n"
                           "b = $r5_x.y $r6\n");
    PARAM_CTX *ctx = param_ctx_alloc(cf);
    STRBUF *err = strbuf_alloc(64);
    HTABLE *refs;

    (void) state;
    assert_int_equal(param_ctx_override(ctx, "c=$r7", "-o", err), 0);
    refs = param_referenced_names(ctx);
    for (int i = 1; i <= 7; i++) {
        strbuf_printf(err, "r%d%s", i, i == 5 ? "_x" : "");
        if (htable_locate(refs, err->data) == NULL)
            fail_msg("%s not referenced", err->data);
    }
    assert_null(htable_locate(refs, "notref"));
    assert_null(htable_locate(refs, "lit"));
    assert_null(htable_locate(refs, "a"));
    assert_null(htable_locate(refs, "y"));
    /* Names used by the built-in defaults count too. */
    assert_non_null(htable_locate(refs, "multi_instance_name"));
    htable_free(&refs, NULL);
    param_ctx_free(&ctx);
    maincf_free(&cf);
    strbuf_free(&err);
}

static void test_warn_unknown(void **state)
{
    MAINCF *cf = maincf_of("mail_name = $used_by_known\n"
                           "used_by_known = 1\n"
                           "unused_one = x\n"
                           "used_by_unknown = 2\n"
                           "user_list = ${used_by_unknown?yes}\n"
                           "dollar_escaped = 3\n"
                           "other = $$dollar_escaped\n"
                           "in_override = 4\n");
    PARAM_CTX *ctx = param_ctx_alloc(cf);
    STRBUF *err = strbuf_alloc(64);

    (void) state;
    assert_int_equal(param_ctx_override(ctx, "mail_name=$in_override", "-o",
                                        err), 0);
    unit_log_reset();
    params_warn_unknown(ctx);
    assert_true(unit_logged("warning: /cf/main.cf, line 3: unknown "
                            "parameter: unused_one=x"));
    assert_true(unit_logged("line 7: unknown parameter: other="));
    assert_true(unit_logged("line 6: unknown parameter: dollar_escaped=3"));
    /* user_list is not referenced by anything either. */
    assert_true(unit_logged("line 5: unknown parameter: user_list="));
    assert_false(unit_logged("used_by_known="));
    assert_false(unit_logged("used_by_unknown="));
    assert_false(unit_logged("in_override="));
    assert_false(unit_logged("mail_name="));
    param_ctx_free(&ctx);

    /* Nothing to say without main.cf, or with only known names. */
    ctx = param_ctx_alloc(NULL);
    unit_log_reset();
    params_warn_unknown(ctx);
    assert_false(unit_logged("warning"));
    param_ctx_free(&ctx);
    maincf_free(&cf);
    cf = maincf_of("mail_name = x\nqueue_directory = /q\n");
    ctx = param_ctx_alloc(cf);
    params_warn_unknown(ctx);
    assert_false(unit_logged("warning"));
    param_ctx_free(&ctx);
    maincf_free(&cf);
    strbuf_free(&err);
}

/* --- param_convert ---------------------------------------------------- */

static int t_bool;
static int t_int;
static long t_long;
static int t_time;
static char *t_str;

static const PARAM_DEF def_bool = {"t_bool", PARAM_BOOL, "no", NULL, &t_bool,
                                   0, 1, 0, "test"};
static const PARAM_DEF def_int = {"t_int", PARAM_INT, "1", NULL, &t_int,
                                  -10, 1000, 0, "test"};
static const PARAM_DEF def_int_wide = {"t_int_wide", PARAM_INT, "1", NULL,
                                       &t_int, 0, LONG_MAX, 0, "test"};
static const PARAM_DEF def_long = {"t_long", PARAM_LONG, "1", NULL, &t_long,
                                   0, LONG_MAX, 0, "test"};
static const PARAM_DEF def_time_s = {"t_time", PARAM_TIME, "1s", NULL,
                                     &t_time, 0, INT_MAX, 's', "test"};
static const PARAM_DEF def_time_d = {"t_time_d", PARAM_TIME, "1d", NULL,
                                     &t_time, 1, 30 * 86400, 'd', "test"};
static const PARAM_DEF def_str = {"t_str", PARAM_STR, "", NULL, &t_str,
                                  0, 0, 0, "test"};

/* Convert value, expecting success; returns the error buffer. */
static void convert_ok(const PARAM_DEF *def, const char *value)
{
    STRBUF *err = strbuf_alloc(64);

    if (param_convert(def, value, "here", err) != 0)
        fail_msg("%s = %s: %s", def->name, value, err->data);
    strbuf_free(&err);
}

static void convert_bad(const PARAM_DEF *def, const char *value,
                        const char *want)
{
    STRBUF *err = strbuf_alloc(64);

    if (param_convert(def, value, "/x/main.cf, line 7", err) != -1)
        fail_msg("%s = \"%s\" accepted", def->name, value);
    if (strcmp(err->data, want) != 0)
        fail_msg("%s = \"%s\":\n got \"%s\"\nwant \"%s\"", def->name, value,
                 err->data, want);
    strbuf_free(&err);
}

static void test_convert_bool(void **state)
{
    static const char *bad[] = {"", "y", "n", "1", "0", "true", "yes ",
                                " no", "yess", "on"};

    (void) state;
    t_bool = -1;
    convert_ok(&def_bool, "yes");
    assert_int_equal(t_bool, 1);
    convert_ok(&def_bool, "no");
    assert_int_equal(t_bool, 0);
    convert_ok(&def_bool, "YES");
    assert_int_equal(t_bool, 1);
    convert_ok(&def_bool, "No");
    assert_int_equal(t_bool, 0);
    convert_ok(&def_bool, "yEs");
    assert_int_equal(t_bool, 1);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        STRBUF *want = strbuf_alloc(64);

        strbuf_printf(want, "/x/main.cf, line 7: bad boolean configuration: "
                      "t_bool = %s (use yes or no)", bad[i]);
        convert_bad(&def_bool, bad[i], want->data);
        assert_int_equal(t_bool, 1);            /* unchanged */
        strbuf_free(&want);
    }
}

static void test_convert_int(void **state)
{
    (void) state;
    convert_ok(&def_int, "0");
    assert_int_equal(t_int, 0);
    convert_ok(&def_int, "1000");
    assert_int_equal(t_int, 1000);
    convert_ok(&def_int, "-10");
    assert_int_equal(t_int, -10);
    convert_ok(&def_int, "007");
    assert_int_equal(t_int, 7);
    convert_bad(&def_int, "1001", "/x/main.cf, line 7: invalid t_int "
                "parameter value 1001: must be in the range -10..1000");
    convert_bad(&def_int, "-11", "/x/main.cf, line 7: invalid t_int "
                "parameter value -11: must be in the range -10..1000");
    assert_int_equal(t_int, 7);
    convert_bad(&def_int, "", "/x/main.cf, line 7: bad numerical "
                "configuration: t_int = ");
    convert_bad(&def_int, "abc", "/x/main.cf, line 7: bad numerical "
                "configuration: t_int = abc");
    convert_bad(&def_int, "12abc", "/x/main.cf, line 7: bad numerical "
                "configuration: t_int = 12abc");
    convert_bad(&def_int, "+5", "/x/main.cf, line 7: bad numerical "
                "configuration: t_int = +5");
    convert_bad(&def_int, " 5", "/x/main.cf, line 7: bad numerical "
                "configuration: t_int =  5");
    convert_bad(&def_int, "5 ", "/x/main.cf, line 7: bad numerical "
                "configuration: t_int = 5 ");
    convert_bad(&def_int, "1.5", "/x/main.cf, line 7: bad numerical "
                "configuration: t_int = 1.5");
    convert_bad(&def_int, "0x10", "/x/main.cf, line 7: bad numerical "
                "configuration: t_int = 0x10");
    convert_bad(&def_int, "99999999999999999999", "/x/main.cf, line 7: bad "
                "numerical configuration: t_int = 99999999999999999999");
    convert_bad(&def_int, "-99999999999999999999", "/x/main.cf, line 7: bad "
                "numerical configuration: t_int = -99999999999999999999");
    assert_int_equal(t_int, 7);

    /* An int parameter never wraps around, whatever its table range. */
    convert_ok(&def_int_wide, "2147483647");
    assert_int_equal(t_int, INT_MAX);
    convert_bad(&def_int_wide, "2147483648", "/x/main.cf, line 7: invalid "
                "t_int_wide parameter value 2147483648: must be in the range "
                "0..2147483647");
    convert_bad(&def_int_wide, "4294967297", "/x/main.cf, line 7: invalid "
                "t_int_wide parameter value 4294967297: must be in the range "
                "0..2147483647");
    assert_int_equal(t_int, INT_MAX);
}

static void test_convert_long(void **state)
{
    STRBUF *max = strbuf_alloc(32);

    (void) state;
    convert_ok(&def_long, "1099511627776");
    assert_true(t_long == 1099511627776L);
    strbuf_printf(max, "%ld", LONG_MAX);
    convert_ok(&def_long, max->data);
    assert_true(t_long == LONG_MAX);
    convert_bad(&def_long, "9223372036854775808", "/x/main.cf, line 7: bad "
                "numerical configuration: t_long = 9223372036854775808");
    convert_bad(&def_long, "-1", "/x/main.cf, line 7: invalid t_long "
                "parameter value -1: must be in the range "
                "0..9223372036854775807");
    convert_bad(&def_long, "10k", "/x/main.cf, line 7: bad numerical "
                "configuration: t_long = 10k");
    assert_true(t_long == LONG_MAX);
    strbuf_free(&max);
}

static void test_convert_time(void **state)
{
    static const struct {
        const char *value;
        int     secs;
    } good[] = {
        {"0", 0}, {"10", 10}, {"10s", 10}, {"2m", 120}, {"3h", 10800},
        {"1d", 86400}, {"1w", 604800}, {"0w", 0}, {"3550w", 3550 * 604800},
        {"2147483647", INT_MAX}, {"2147483647s", INT_MAX},
    };
    static const char *garbage[] = {
        "", "s", "-1", "-1s", "+1s", "1x", "1ss", "1 s", " 1s", "1s ",
        "1.5h", "1S", "1H", "h1", "1sm", "0x10",
    };

    (void) state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        t_time = -1;
        convert_ok(&def_time_s, good[i].value);
        if (t_time != good[i].secs)
            fail_msg("%s: %d, want %d", good[i].value, t_time, good[i].secs);
    }
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        STRBUF *want = strbuf_alloc(64);

        strbuf_printf(want, "/x/main.cf, line 7: bad time configuration: "
                      "t_time = %s (use a number with an optional s, m, h, d "
                      "or w suffix)", garbage[i]);
        t_time = 42;
        convert_bad(&def_time_s, garbage[i], want->data);
        assert_int_equal(t_time, 42);
        strbuf_free(&want);
    }

    /* The default unit applies to a bare number. */
    convert_ok(&def_time_d, "2");
    assert_int_equal(t_time, 2 * 86400);
    convert_ok(&def_time_d, "2s");
    assert_int_equal(t_time, 2);
    convert_ok(&def_time_d, "30d");
    assert_int_equal(t_time, 30 * 86400);
    convert_bad(&def_time_d, "0", "/x/main.cf, line 7: invalid t_time_d "
                "parameter value 0: must be in the range 1..2592000");
    convert_bad(&def_time_d, "31", "/x/main.cf, line 7: invalid t_time_d "
                "parameter value 31: must be in the range 1..2592000");
    convert_bad(&def_time_d, "5w", "/x/main.cf, line 7: invalid t_time_d "
                "parameter value 5w: must be in the range 1..2592000");

    /* Overflow: of the number, of number * unit, of the int. */
    t_time = 42;
    convert_bad(&def_time_s, "99999999999999999999", "/x/main.cf, line 7: "
                "bad time configuration: t_time = 99999999999999999999 (use a "
                "number with an optional s, m, h, d or w suffix)");
    convert_bad(&def_time_s, "9223372036854775807w", "/x/main.cf, line 7: "
                "bad time configuration: t_time = 9223372036854775807w (use a "
                "number with an optional s, m, h, d or w suffix)");
    convert_bad(&def_time_s, "15250284452472w", "/x/main.cf, line 7: "
                "bad time configuration: t_time = 15250284452472w (use a "
                "number with an optional s, m, h, d or w suffix)");
    convert_bad(&def_time_s, "3551w", "/x/main.cf, line 7: invalid t_time "
                "parameter value 3551w: must be in the range 0..2147483647");
    convert_bad(&def_time_s, "2147483648", "/x/main.cf, line 7: invalid "
                "t_time parameter value 2147483648: must be in the range "
                "0..2147483647");
    assert_int_equal(t_time, 42);
}

static void test_convert_string(void **state)
{
    (void) state;
    convert_ok(&def_str, "first");
    assert_string_equal(t_str, "first");
    convert_ok(&def_str, "");
    assert_string_equal(t_str, "");
    convert_ok(&def_str, "second value with $dollar");
    assert_string_equal(t_str, "second value with $dollar");
    free(t_str);
    t_str = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_load_values_and_defaults),
        cmocka_unit_test(test_load_typed),
        cmocka_unit_test(test_load_overrides),
        cmocka_unit_test(test_load_expansion),
        cmocka_unit_test(test_load_expansion_error),
        cmocka_unit_test(test_load_config_directory_forced),
        cmocka_unit_test(test_load_type_errors),
        cmocka_unit_test(test_load_missing_main_cf),
        cmocka_unit_test(test_load_all_or_nothing),
        cmocka_unit_test(test_load_fatal),
        cmocka_unit_test(test_load_oversized),
        cmocka_unit_test(test_config_dir_choice),
        cmocka_unit_test(test_myhostname_mydomain),
        cmocka_unit_test(test_computed_default_loop),
        cmocka_unit_test(test_ctx_raw_and_origin),
        cmocka_unit_test(test_ctx_computed_default_after_override),
        cmocka_unit_test(test_referenced_names),
        cmocka_unit_test(test_warn_unknown),
        cmocka_unit_test(test_convert_bool),
        cmocka_unit_test(test_convert_int),
        cmocka_unit_test(test_convert_long),
        cmocka_unit_test(test_convert_time),
        cmocka_unit_test(test_convert_string),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
