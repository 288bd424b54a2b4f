/*
 * param_list.h - every main.cf parameter Postern knows, declared once.
 *
 * This file is an X-macro list: params.h and params.c include it with the
 * macros defined to produce the var_* declarations, their definitions and
 * the parameter table; the main.cf(5) man page is generated from the same
 * table, so documentation cannot drift from the code.
 *
 *   P_STR(name, default, doc)            char *var_name, $expanded
 *   P_RAW(name, default, doc)            char *var_name, not expanded
 *   P_FN(name, function, doc)            char *var_name, computed default
 *   P_INT(name, default, min, max, doc)  int var_name
 *   P_LONG(name, default, min, max, doc) long var_name (sizes, in bytes)
 *   P_BOOL(name, default, doc)           int var_name, "yes" or "no"
 *   P_TIME(name, default, unit, min, max, doc)
 *                                        int var_name, in seconds; the
 *                                        value is a number with an optional
 *                                        s/m/h/d/w suffix, 'unit' when none
 *
 * Defaults are written as "postern conf -d" prints them: the same text as
 * Postfix's postconf -d wherever the parameter is shared with Postfix.
 * Keep the list sorted by name.
 */

P_STR(command_directory, DEF_COMMAND_DIR,
      "Where the postern(1), sendmail(1) and mailq(1) commands are installed.")
P_STR(compatibility_level, "3.6",
      "Which defaults apply where Postfix changed them over time. Postern "
      "starts at 3.6: host-only mynetworks_style and an empty relay_domains. "
      "Compared as a level (3.10 is above 3.9).")
P_STR(config_directory, DEF_CONFIG_DIR,
      "The directory with main.cf and master.cf. Set it with postern -c DIR "
      "or the POSTERN_CONFIG_DIR environment variable, not in main.cf.")
P_STR(daemon_directory, DEF_DAEMON_DIR,
      "The directory with the server programs master starts.")
P_STR(data_directory, DEF_DATA_DIR,
      "Writable data that is not queue: the master lock and pid file, caches.")
P_STR(default_database_type, "lmdb",
      "The table type \"postern map\" uses for a file given without "
      "type: (Postfix's default is hash, which Postern does not have).")
P_INT(default_process_limit, "100", 1, 100000,
      "The most processes of one service at a time, when its master.cf "
      "maxproc field is \"-\".")
P_STR(inet_interfaces, "all",
      "The addresses inet services listen on when their master.cf entry "
      "names no host: all, loopback-only, or a list of addresses.")
P_STR(inet_protocols, "all",
      "The IP versions in use: all, ipv4, ipv6, or ipv4, ipv6.")
P_LONG(lmdb_map_size, "16777216", 1, 1L << 40,
       "The initial size of an lmdb: table in bytes; a table grows in steps "
       "of this size when it fills up.")
P_STR(mail_name, "Postern",
      "The mail system name, used in the SMTP greeting and in headers.")
P_STR(mail_owner, "postern",
      "The unprivileged account that owns the queue and runs the services "
      "when master starts as root. It must not be shared with anything else.")
P_FN(mail_version, param_default_mail_version,
     "The Postern version. Read-only.")
P_STR(maillog_file, "",
      "Log to this file instead of syslog; /dev/stdout and /dev/stderr are "
      "allowed. Each line is written whole with O_APPEND.")
P_TIME(max_idle, "100s", 's', 1, 86400 * 365,
       "How long a service process waits for a new client before it exits.")
P_INT(max_use, "100", 1, 1000000000,
      "How many clients a service process serves before it exits.")
P_STR(multi_instance_name, "",
      "The name of this instance when several run on one host; it becomes "
      "the default syslog_name.")
P_FN(mydomain, param_default_mydomain,
     "The internet domain of this host: by default $myhostname without its "
     "first label, or localdomain.")
P_FN(myhostname, param_default_myhostname,
     "The fully qualified name of this host: by default the system host "
     "name, with .localdomain added when it has no dot.")
P_RAW(process_name, "",
      "The name of the running program, set by the program itself. Read-only.")
P_STR(queue_directory, DEF_QUEUE_DIR,
      "The root of the mail queue; chrooted services run inside it.")
P_STR(recipient_delimiter, "",
      "The characters that separate a user name from an address extension, "
      "as in user+ext@domain; any one of them counts. Empty: no extensions.")
P_TIME(service_throttle_time, "60s", 's', 1, 86400,
       "How long master waits before it forks a service again after the "
       "service failed at start-up.")
P_STR(setgid_group, "postdrop",
      "The group that owns maildrop/ and public/, so that the sendmail "
      "command can submit mail and reach public services.")
P_TIME(stop_grace_time, "10s", 's', 0, 3600,
       "On postern stop, how long master lets running sessions finish "
       "before it kills them.")
P_STR(syslog_name, "${multi_instance_name?{$multi_instance_name}:{postern}}",
      "The prefix of every log line: syslog_name/program[pid].")
