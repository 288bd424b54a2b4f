/*
 * test_trigger - poking a service socket: the bytes arrive, a missing or
 * dead service is an error at once, a too long name is refused, and a
 * listener whose backlog is full never blocks the caller.
 */
#include "unit.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "mail/trigger.h"

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A listening socket at class/name (relative to the cwd). */
static int listen_at(const char *class, const char *name, int backlog)
{
    struct sockaddr_un sun;
    int fd;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/%s", class, name);
    (void) unlink(sun.sun_path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *) &sun, sizeof(sun)), 0);
    assert_int_equal(listen(fd, backlog), 0);
    return fd;
}

/* Accept one connection and read what it sent until end of file. */
static void accept_read(int lfd, STRBUF *out)
{
    struct pollfd pfd = {lfd, POLLIN, 0};
    char buf[256];
    ssize_t n;
    int fd;

    assert_int_equal(poll(&pfd, 1, 5000), 1);
    fd = accept(lfd, NULL, NULL);
    assert_true(fd >= 0);
    strbuf_reset(out);
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        strbuf_append(out, buf, (size_t) n);
    assert_int_equal(n, 0);
    close(fd);
}

static int setup(void **state)
{
    (void) state;
    if (chdir(unit_tmpdir()) < 0 || mkdir("public", 0755) < 0
        || mkdir("private", 0700) < 0)
        return -1;
    return 0;
}

static void test_delivers(void **state)
{
    STRBUF *got = strbuf_alloc(64);
    char w = TRIGGER_WAKEUP;
    int lfd;

    (void) state;
    lfd = listen_at("public", "qmgr", 16);
    assert_int_equal(trigger_send("public", "qmgr", &w, 1), 0);
    accept_read(lfd, got);
    assert_int_equal(got->len, 1);
    assert_int_equal(got->data[0], TRIGGER_WAKEUP);
    /* Several bytes, binary included, and two pokes in a row. */
    assert_int_equal(trigger_send("public", "qmgr", "AF\0W", 4), 0);
    assert_int_equal(trigger_send("public", "qmgr", "A", 1), 0);
    accept_read(lfd, got);
    assert_int_equal(got->len, 4);
    assert_memory_equal(got->data, "AF\0W", 4);
    accept_read(lfd, got);
    assert_string_equal(got->data, "A");
    /* Nothing to say: a connection without data is still a poke. */
    assert_int_equal(trigger_send("public", "qmgr", "", 0), 0);
    accept_read(lfd, got);
    assert_int_equal(got->len, 0);
    close(lfd);
    (void) unlink("public/qmgr");
    strbuf_free(&got);
}

static void test_missing(void **state)
{
    long long start;
    int lfd;

    (void) state;
    start = now_ms();
    assert_int_equal(trigger_send("public", "nothere", "W", 1), -1);
    assert_int_equal(trigger_send("nodir", "qmgr", "W", 1), -1);
    /* A socket whose listener is gone. */
    lfd = listen_at("private", "dead", 1);
    close(lfd);
    assert_int_equal(trigger_send("private", "dead", "W", 1), -1);
    /* Not a socket at all. */
    close(open("private/file", O_WRONLY | O_CREAT, 0600));
    assert_int_equal(trigger_send("private", "file", "W", 1), -1);
    assert_true(now_ms() - start < 1000);
    (void) unlink("private/dead");
    (void) unlink("private/file");
}

static void test_long_name(void **state)
{
    STRBUF *name = strbuf_alloc(256);
    STRBUF *path = strbuf_alloc(256);
    int lfd;

    (void) state;
    /* sun_path holds 108 bytes: a name that does not fit is refused,
     * never truncated to another socket's name. */
    while (name->len < 200)
        strbuf_addch(name, 'n');
    assert_int_equal(trigger_send("public", name->data, "W", 1), -1);
    strbuf_truncate(name, sizeof(((struct sockaddr_un *) 0)->sun_path)
                    - strlen("public/"));
    assert_int_equal(trigger_send("public", name->data, "W", 1), -1);
    /* Even when the truncated name is a live socket. */
    strbuf_truncate(name, name->len - 1);
    lfd = listen_at("public", name->data, 4);
    strbuf_cat(name, "x");
    assert_int_equal(trigger_send("public", name->data, "W", 1), -1);
    {
        struct pollfd pfd = {lfd, POLLIN, 0};

        assert_int_equal(poll(&pfd, 1, 0), 0);
    }
    close(lfd);
    strbuf_truncate(name, name->len - 1);
    strbuf_printf(path, "public/%s", name->data);
    (void) unlink(path->data);
    strbuf_free(&name);
    strbuf_free(&path);
}

static void test_full_backlog(void **state)
{
    int clients[256];
    int nclients = 0;
    long long start;
    int lfd;

    (void) state;
    lfd = listen_at("public", "busy", 0);
    /* Fill the backlog with connections nobody accepts. */
    while (nclients < (int) (sizeof(clients) / sizeof(clients[0]))) {
        struct sockaddr_un sun;
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

        assert_true(fd >= 0);
        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        snprintf(sun.sun_path, sizeof(sun.sun_path), "public/busy");
        if (connect(fd, (struct sockaddr *) &sun, sizeof(sun)) < 0) {
            assert_int_equal(errno, EAGAIN);
            close(fd);
            break;
        }
        clients[nclients++] = fd;
    }
    assert_true(nclients > 0);
    assert_true(nclients < (int) (sizeof(clients) / sizeof(clients[0])));
    /* The poke fails at once instead of waiting for room (a hang is
     * killed by the alarm). */
    alarm(10);
    start = now_ms();
    for (int i = 0; i < 20; i++)
        assert_int_equal(trigger_send("public", "busy", "W", 1), -1);
    assert_true(now_ms() - start < 1000);
    alarm(0);
    /* Once there is room again, it works. */
    for (int i = 0; i < nclients; i++) {
        int fd = accept(lfd, NULL, NULL);

        assert_true(fd >= 0);
        close(fd);
        close(clients[i]);
    }
    assert_int_equal(trigger_send("public", "busy", "W", 1), 0);
    close(lfd);
    (void) unlink("public/busy");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delivers),
        cmocka_unit_test(test_missing),
        cmocka_unit_test(test_long_name),
        cmocka_unit_test(test_full_backlog),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
