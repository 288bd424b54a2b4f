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

P_STR(2bounce_notice_recipient, "postmaster",
      "Who gets a bounce that could not be delivered (a double bounce).")
P_INT(access_map_defer_code, "450", 400, 499,
      "The reply code for DEFER in an access(5) table.")
P_INT(access_map_reject_code, "554", 500, 599,
      "The reply code for REJECT in an access(5) table.")
P_STR(alias_database, "lmdb:/etc/aliases",
      "The alias tables that newaliases (postern map) builds.")
P_STR(alias_maps, "lmdb:/etc/aliases",
      "The aliases(5) tables of local delivery (Postfix's default is "
      "hash:/etc/aliases; Postern has no hash tables).")
P_STR(allow_mail_to_commands, "alias, forward",
      "Where |command destinations are allowed: alias, forward, include.")
P_STR(allow_mail_to_files, "alias, forward",
      "Where /file destinations are allowed: alias, forward, include.")
P_BOOL(allow_percent_hack, "yes",
       "Rewrite user%domain@ourdomain to user@domain for local domains.")
P_TIME(anvil_rate_time_unit, "60s", 's', 1, 86400,
       "The time unit over which client connection rates are counted.")
P_TIME(anvil_status_update_time, "600s", 's', 1, 86400,
       "How often the anvil service logs its peak counts.")
P_STR(bounce_notice_recipient, "postmaster",
      "Who gets notices about bounces (not sent unless notify_classes asks).")
P_TIME(bounce_queue_lifetime, "5d", 'd', 0, 86400 * 365,
       "How long a bounce stays in the queue before it is given up.")
P_INT(bounce_size_limit, "50000", 1, 1 << 30,
      "The most bytes of the original message a bounce returns.")
P_BOOL(broken_sasl_auth_clients, "no",
       "Also announce AUTH in the old AUTH=mech form, for clients that "
       "predate RFC 4954 (Outlook Express 4, old Outlook).")
P_STR(canonical_maps, "",
      "Tables that rewrite sender and recipient addresses in cleanup.")
P_STR(command_directory, DEF_COMMAND_DIR,
      "Where the postern(1), sendmail(1) and mailq(1) commands are installed.")
P_TIME(command_time_limit, "1000s", 's', 1, 86400,
       "How long a |command delivery may run before it is killed.")
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
P_INT(default_destination_concurrency_limit, "20", 1, 10000,
      "The most parallel deliveries to one destination; "
      "TRANSPORT_destination_concurrency_limit overrides it per transport.")
P_INT(default_destination_recipient_limit, "50", 1, 100000,
      "The most recipients per delivery request; "
      "TRANSPORT_destination_recipient_limit overrides it per transport.")
P_STR(default_privs, "nobody",
      "The account that runs |command and /file deliveries of aliases "
      "whose table is owned by root.")
P_INT(default_process_limit, "100", 1, 100000,
      "The most processes of one service at a time, when its master.cf "
      "maxproc field is \"-\".")
P_STR(default_transport, "smtp",
      "The transport for domains that are not ours.")
P_INT(defer_code, "450", 400, 499,
      "The reply code for the defer restriction.")
P_TIME(delay_warning_time, "0h", 'h', 0, 86400 * 365,
       "When to tell the sender that a message is delayed (0: never).")
P_BOOL(disable_vrfy_command, "yes",
       "Refuse the SMTP VRFY command (502 5.5.1). Postern refuses VRFY "
       "unless this is set to no (Postfix allows it by default): it only "
       "helps address harvesting.")
P_STR(dns_servers, "",
      "The DNS servers Postern queries, as address or address:port "
      "(IPv4: 127.0.0.1:5353); empty: the system's (/etc/resolv.conf). "
      "Postern-specific: lets tests and split-horizon setups use their "
      "own resolver.")
P_STR(double_bounce_sender, "double-bounce",
      "The sender of double-bounce notices; mail to it is discarded.")
P_STR(header_checks, "",
      "pcre: tables matched against each message header in cleanup; the "
      "actions are REJECT, HOLD, DISCARD, WARN, PREPEND and IGNORE.")
P_INT(header_size_limit, "102400", 1024, 1 << 30,
      "The most bytes of message headers; longer headers end the header "
      "section and the rest is treated as body.")
P_STR(home_mailbox, "",
      "The mailbox of local users, relative to their home directory: "
      "ending in / means Maildir (Maildir/); empty means an mbox file in "
      "mail_spool_directory.")
P_INT(hopcount_limit, "50", 1, 1000,
      "The most Received: headers a message may have before it is "
      "rejected as looping (5.4.6).")
P_STR(inet_interfaces, "all",
      "The addresses inet services listen on when their master.cf entry "
      "names no host: all, loopback-only, or a list of addresses.")
P_STR(inet_protocols, "all",
      "The IP versions in use: all, ipv4, ipv6, or ipv4, ipv6.")
P_INT(invalid_hostname_reject_code, "501", 400, 599,
      "The reply code for reject_invalid_helo_hostname.")
P_TIME(ipc_timeout, "3600s", 's', 1, 86400,
       "How long a service waits for another service's next request or "
       "reply.")
P_INT(line_length_limit, "2048", 256, 1 << 24,
      "The longest SMTP line smtpd reads in one piece; longer message "
      "lines are kept whole, longer commands are refused.")
P_LONG(lmdb_map_size, "16777216", 1, 1L << 40,
       "The initial size of an lmdb: table in bytes; a table grows in steps "
       "of this size when it fills up.")
P_INT(local_destination_concurrency_limit, "2", 1, 10000,
      "The most parallel deliveries to one local user.")
P_INT(local_destination_recipient_limit, "1", 1, 100000,
      "Recipients per local delivery request.")
P_STR(local_recipient_maps, "proxy:unix:passwd.byname $alias_maps",
      "Tables of the users of mydestination: recipients not found there "
      "are refused at RCPT (empty: accept every local recipient).")
P_STR(local_transport, "local:$myhostname",
      "The transport (and next hop) for mydestination.")
P_STR(mail_name, "Postern",
      "The mail system name, used in the SMTP greeting and in headers.")
P_STR(mail_owner, "postern",
      "The unprivileged account that owns the queue and runs the services "
      "when master starts as root. It must not be shared with anything else.")
P_STR(mail_spool_directory, "/var/mail",
      "Where mbox files of local users live (home_mailbox empty).")
P_FN(mail_version, param_default_mail_version,
     "The Postern version. Read-only.")
P_LONG(mailbox_size_limit, "51200000", 0, 1L << 50,
       "The largest local mbox file or Maildir message (0: no limit); "
       "over it, delivery is deferred (mailbox full).")
P_STR(maillog_file, "",
      "Log to this file instead of syslog; /dev/stdout and /dev/stderr are "
      "allowed. Each line is written whole with O_APPEND.")
P_TIME(max_idle, "100s", 's', 1, 86400 * 365,
       "How long a service process waits for a new client before it exits.")
P_INT(max_use, "100", 1, 1000000000,
      "How many clients a service process serves before it exits.")
P_TIME(maximal_backoff_time, "4000s", 's', 1, 86400 * 365,
       "The longest wait between delivery attempts of a deferred message.")
P_TIME(maximal_queue_lifetime, "5d", 'd', 0, 86400 * 365,
       "How long a message may stay deferred before it bounces.")
P_LONG(message_size_limit, "10240000", 0, 1L << 40,
       "The largest message in bytes, as announced with the SIZE keyword; "
       "0 means no limit.")
P_TIME(minimal_backoff_time, "300s", 's', 1, 86400 * 365,
       "The shortest wait between delivery attempts of a deferred message.")
P_STR(multi_instance_name, "",
      "The name of this instance when several run on one host; it becomes "
      "the default syslog_name.")
P_STR(mydestination, "$myhostname, localhost.$mydomain, localhost",
      "The domains this system delivers locally.")
P_FN(mydomain, param_default_mydomain,
     "The internet domain of this host: by default $myhostname without its "
     "first label, or localdomain.")
P_FN(myhostname, param_default_myhostname,
     "The fully qualified name of this host: by default the system host "
     "name, with .localdomain added when it has no dot.")
P_FN(mynetworks, param_default_mynetworks,
     "The client networks trusted to relay (permit_mynetworks): by default "
     "the addresses (mynetworks_style host) or networks (subnet) of this "
     "host's interfaces.")
P_STR(mynetworks_style, "${{$compatibility_level} <level {2} ? {subnet} : {host}}",
      "How the default mynetworks is computed: host or subnet.")
P_STR(myorigin, "$myhostname",
      "The domain added to addresses without one in local submissions.")
P_INT(non_fqdn_reject_code, "504", 400, 599,
      "The reply code for reject_non_fqdn_* restrictions.")
P_STR(parent_domain_matches_subdomains,
      "debug_peer_list,fast_flush_domains,mynetworks,permit_mx_backup_networks,qmqpd_authorized_clients,relay_domains,smtpd_access_maps",
      "The parameters where a domain also matches its subdomains; the "
      "others need .domain to match subdomains.")
P_TIME(pop3d_auth_failure_delay, "2s", 's', 0, 60,
      "How long pop3d waits before it answers a failed login.")
P_INT(pop3d_auth_failure_limit, "3", 1, 1000,
      "Failed logins after which pop3d disconnects the client.")
P_STR(pop3d_banner, "$myhostname POP3 server ready",
      "The text after +OK in pop3d's greeting.")
P_INT(pop3d_client_auth_failure_limit, "20", 0, 1000000,
      "The most failed logins one client address may make per "
      "anvil_rate_time_unit over all pop3d sessions; after that logins get "
      "-ERR [LOGIN-DELAY] (0: no limit; smtpd_client_event_limit_exceptions "
      "are exempt).")
P_INT(pop3d_error_limit, "20", 1, 1000,
      "Invalid commands after which pop3d disconnects the client.")
P_STR(pop3d_sasl_security_options, "noanonymous",
      "SASL security options of pop3d before TLS (as "
      "smtpd_sasl_security_options).")
P_STR(pop3d_sasl_tls_security_options, "$pop3d_sasl_security_options",
      "SASL security options of pop3d over TLS.")
P_TIME(pop3d_timeout, "600s", 's', 1, 86400,
      "How long pop3d waits for a client command (RFC 1939 asks for at "
      "least 10 minutes).")
P_BOOL(pop3d_tls_auth_only, "yes",
      "Refuse USER/PASS and plaintext SASL mechanisms before TLS.")
P_STR(pop3d_tls_cert_file, "$smtpd_tls_cert_file",
      "pop3d's RSA certificate (PEM, with its chain).")
P_STR(pop3d_tls_chain_files, "$smtpd_tls_chain_files",
      "pop3d's keys and certificate chains, as smtpd_tls_chain_files.")
P_STR(pop3d_tls_eccert_file, "$smtpd_tls_eccert_file",
      "pop3d's ECDSA certificate (PEM).")
P_STR(pop3d_tls_eckey_file, "$smtpd_tls_eckey_file",
      "The private key of pop3d_tls_eccert_file.")
P_STR(pop3d_tls_key_file, "$smtpd_tls_key_file",
      "The private key of pop3d_tls_cert_file.")
P_STR(pop3d_tls_security_level, "may",
      "none: no STLS; may: STLS offered; encrypt: nothing but CAPA, STLS "
      "and QUIT before TLS.")
P_BOOL(pop3d_tls_wrappermode, "no",
      "TLS from the first byte (the pop3s service, port 995).")
P_RAW(process_name, "",
      "The name of the running program, set by the program itself. Read-only.")
P_INT(qmgr_message_active_limit, "20000", 1, 10000000,
      "The most messages the queue manager holds in memory.")
P_STR(queue_directory, DEF_QUEUE_DIR,
      "The root of the mail queue; chrooted services run inside it.")
P_TIME(queue_run_delay, "300s", 's', 1, 86400,
       "How often the queue manager scans the deferred queue.")
P_STR(recipient_canonical_maps, "",
      "Tables that rewrite envelope and header recipients in cleanup.")
P_STR(recipient_delimiter, "",
      "The characters that separate a user name from an address extension, "
      "as in user+ext@domain; any one of them counts. Empty: no extensions.")
P_INT(reject_code, "554", 400, 599,
      "The reply code for the reject restriction.")
P_STR(relay_domains, "${{$compatibility_level} <level {2} ? {$mydestination} : {}}",
      "Remote domains this system accepts mail for and relays.")
P_INT(relay_domains_reject_code, "554", 400, 599,
      "The reply code for reject_unauth_destination.")
P_STR(relay_transport, "relay",
      "The transport for relay_domains.")
P_STR(relayhost, "",
      "The next hop for mail to other domains (default_transport and "
      "relay_transport): [host]:port, host:port or a domain whose MX hosts "
      "to use; empty: the recipient domain's MX hosts.")
P_STR(sasl_db_path, "$data_directory/sasldb2",
      "Postern: the Cyrus SASL password store (sasldb) that SMTP AUTH, "
      "POP3 and IMAP check passwords against, kept by postern user. It "
      "must be readable by mail_owner, inside the chroot when the service "
      "is chrooted.")
P_STR(sasl_mech_list, "PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256",
      "Postern: the SASL mechanisms offered (Cyrus mech_list); each must "
      "be installed (Debian's libsasl2-modules).")
P_STR(sender_canonical_maps, "",
      "Tables that rewrite envelope and header senders in cleanup.")
P_RAW(service_name, "",
      "The master.cf service name of the running process, set by the "
      "program itself. Read-only.")
P_TIME(service_throttle_time, "60s", 's', 1, 86400,
       "How long master waits before it forks a service again after the "
       "service failed at start-up.")
P_STR(setgid_group, "postdrop",
      "The group that owns maildrop/ and public/, so that the sendmail "
      "command can submit mail and reach public services.")
P_BOOL(smtp_always_send_ehlo, "yes",
       "Send EHLO even when the server's greeting does not say ESMTP.")
P_TIME(smtp_connect_timeout, "30s", 's', 1, 3600,
       "How long a TCP connection to a server may take.")
P_TIME(smtp_connection_cache_time_limit, "2s", 's', 0, 3600,
       "How long an smtp process keeps an idle connection open for the "
       "next message to the same destination (0: never reuse).")
P_INT(smtp_connection_reuse_count_limit, "0", 0, 1000000,
      "How many deliveries one connection may serve (0: no limit).")
P_TIME(smtp_connection_reuse_time_limit, "300s", 's', 1, 86400,
       "How long after it was opened a connection may still be reused.")
P_TIME(smtp_data_done_timeout, "600s", 's', 1, 86400,
       "How long the server may take to answer the end of DATA.")
P_TIME(smtp_data_init_timeout, "120s", 's', 1, 86400,
       "How long the server may take to answer DATA.")
P_TIME(smtp_data_xfer_timeout, "180s", 's', 1, 86400,
       "How long sending one chunk of the message may take.")
P_STR(smtp_helo_name, "$myhostname",
      "The name the smtp client gives in EHLO and HELO.")
P_TIME(smtp_helo_timeout, "300s", 's', 1, 86400,
       "How long the server may take to greet and to answer EHLO/HELO.")
P_TIME(smtp_mail_timeout, "300s", 's', 1, 86400,
       "How long the server may take to answer MAIL FROM.")
P_INT(smtp_mx_address_limit, "5", 0, 1000,
      "The most addresses (of all MX hosts) tried per delivery (0: all).")
P_INT(smtp_mx_session_limit, "2", 0, 1000,
      "The most servers that accept a session tried per delivery "
      "(0: no limit).")
P_BOOL(smtp_never_send_ehlo, "no",
       "Send HELO, never EHLO.")
P_TIME(smtp_quit_timeout, "300s", 's', 1, 86400,
       "How long the server may take to answer QUIT.")
P_TIME(smtp_rcpt_timeout, "300s", 's', 1, 86400,
       "How long the server may take to answer RCPT TO.")
P_TIME(smtp_rset_timeout, "20s", 's', 1, 86400,
       "How long the server may take to answer RSET.")
P_BOOL(smtp_sasl_auth_enable, "no",
       "Log in to servers listed in smtp_sasl_password_maps (SMTP AUTH to "
       "a smarthost).")
P_STR(smtp_sasl_mechanism_filter, "",
      "The SASL mechanisms the smtp client may use (empty: any the server "
      "offers).")
P_STR(smtp_sasl_password_maps, "",
      "Tables to username:password, looked up by the next hop as written "
      "([host]:port, host:port, domain), then the server's host name, "
      "then the next-hop host or domain (see smtp(8)).")
P_STR(smtp_sasl_security_options, "noplaintext, noanonymous",
      "SASL mechanism restrictions without TLS: no plaintext passwords.")
P_STR(smtp_sasl_tls_security_options, "noanonymous",
      "SASL mechanism restrictions over TLS. Postern: noanonymous, so "
      "PLAIN and LOGIN work over TLS (Postfix: "
      "$smtp_sasl_security_options).")
P_BOOL(smtp_skip_5xx_greeting, "yes",
       "Try the next server after a 5xx greeting instead of bouncing.")
P_TIME(smtp_starttls_timeout, "300s", 's', 1, 86400,
       "How long the TLS handshake may take.")
P_STR(smtp_tls_CAfile, "",
      "Trust anchors (PEM) for verifying servers' certificates.")
P_STR(smtp_tls_CApath, "",
      "A directory of trust anchors (c_rehash format).")
P_STR(smtp_tls_cert_file, "",
      "A client certificate to present to servers that ask (optional).")
P_STR(smtp_tls_ciphers, "medium",
      "The cipher grade with opportunistic TLS: high or medium.")
P_STR(smtp_tls_exclude_ciphers, "",
      "Ciphers or OpenSSL cipher aliases never to use.")
P_STR(smtp_tls_key_file, "$smtp_tls_cert_file",
      "The private key of smtp_tls_cert_file.")
P_INT(smtp_tls_loglevel, "1", 0, 4,
      "TLS logging: 0 failures only, 1 a line per TLS session "
      "(\"Verified TLS connection established to ...\"). Postern: 1 "
      "(Postfix: 0).")
P_STR(smtp_tls_mandatory_ciphers, "medium",
      "The cipher grade when TLS is required (encrypt, verify, secure).")
P_STR(smtp_tls_mandatory_exclude_ciphers, "",
      "Further ciphers never to use when TLS is required.")
P_STR(smtp_tls_mandatory_protocols, ">=TLSv1.2",
      "The TLS versions allowed when TLS is required. Postern: TLS 1.2 "
      "and 1.3 (Postfix: >=TLSv1).")
P_STR(smtp_tls_policy_maps, "",
      "Per next hop TLS policy: a table from [host]:port, [host], domain, "
      ".parent-domain to a level and, for verify and secure, match= "
      "(other attributes are refused: the mail is deferred).")
P_STR(smtp_tls_protocols, ">=TLSv1",
      "The TLS versions allowed with opportunistic TLS.")
P_STR(smtp_tls_secure_cert_match, "nexthop, dot-nexthop",
      "What a certificate must match at level secure: nexthop (the "
      "domain), dot-nexthop (its subdomains), hostname, or literal names.")
P_STR(smtp_tls_security_level, "may",
      "TLS in the smtp client: none, may (opportunistic: TLS when offered, "
      "any certificate), encrypt (TLS required), verify (and a certificate "
      "that verifies and matches smtp_tls_verify_cert_match), secure (and "
      "matches smtp_tls_secure_cert_match). Postern: may (Postfix: empty).")
P_TIME(smtp_tls_session_cache_timeout, "3600s", 's', 0, 8640000,
       "Whether the smtp client resumes TLS sessions with its cached "
       "connection's server (0: never); sessions live as long as the "
       "server's ticket.")
P_STR(smtp_tls_verify_cert_match, "hostname",
      "What a certificate must match at level verify: hostname (the MX "
      "host name), nexthop, dot-nexthop, or literal names.")
P_STR(smtpd_authorized_xclient_hosts, "",
      "Clients that may use the XCLIENT command to override the client "
      "address, name, HELO and protocol (for tests and front-end proxies).")
P_STR(smtpd_banner, "$myhostname ESMTP $mail_name",
      "The text after 220 in the SMTP greeting.")
P_INT(smtpd_client_auth_failure_limit, "20", 0, 1000000,
      "Postern: the most failed AUTH attempts one client address may "
      "make per anvil_rate_time_unit; after that AUTH is refused with "
      "421 and the client disconnected (0: no limit; "
      "smtpd_client_event_limit_exceptions are exempt).")
P_INT(smtpd_client_auth_rate_limit, "0", 0, 1000000,
      "The most AUTH commands one client address may send per "
      "anvil_rate_time_unit (0: no limit).")
P_INT(smtpd_client_connection_count_limit, "50", 0, 100000,
      "The most simultaneous connections one client address may have "
      "(0: no limit).")
P_STR(smtpd_client_connection_limit_exceptions, "",
      "Old name of smtpd_client_event_limit_exceptions.")
P_INT(smtpd_client_connection_rate_limit, "0", 0, 1000000,
      "The most connections one client address may open per "
      "anvil_rate_time_unit (0: no limit).")
P_STR(smtpd_client_event_limit_exceptions,
      "${smtpd_client_connection_limit_exceptions:$mynetworks}",
      "Clients exempt from the connection count and rate limits.")
P_STR(smtpd_client_restrictions, "",
      "Restrictions on the client address and name.")
P_STR(smtpd_data_restrictions, "",
      "Restrictions applied to the DATA command.")
P_BOOL(smtpd_delay_reject, "yes",
       "Evaluate client, HELO and sender restrictions at RCPT, so that the "
       "log shows the recipient.")
P_TIME(smtpd_error_sleep_time, "1s", 's', 0, 3600,
       "How long smtpd waits before each error reply once the client has "
       "made smtpd_soft_error_limit errors.")
P_BOOL(smtpd_forbid_unauth_pipelining, "yes",
       "Disconnect clients that send commands ahead of time without "
       "ESMTP PIPELINING, or before the greeting (554 5.5.0 SMTP protocol "
       "synchronization), as Postfix 3.9 does by default.")
P_INT(smtpd_hard_error_limit, "${stress?{1}:{20}}", 1, 1000000,
      "The number of errors after which smtpd disconnects.")
P_BOOL(smtpd_helo_required, "no",
       "Require HELO or EHLO before MAIL.")
P_STR(smtpd_helo_restrictions, "",
      "Restrictions on the HELO/EHLO name.")
P_STR(smtpd_null_access_lookup_key, "<>",
      "The key used to look up the null sender in access tables.")
P_BOOL(smtpd_peername_lookup, "yes",
       "Look up the client hostname (reverse DNS, confirmed forward); off, "
       "every client is unknown[address].")
P_INT(smtpd_recipient_limit, "1000", 1, 1000000,
      "The most recipients of one message.")
P_STR(smtpd_recipient_restrictions, "",
      "Restrictions on the recipient address.")
P_BOOL(smtpd_reject_unlisted_recipient, "yes",
       "Refuse recipients of local and virtual domains that no table lists.")
P_STR(smtpd_relay_restrictions,
      "${{$compatibility_level} <level {1} ? {} : {permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination}}",
      "Relay control at RCPT; must contain reject_unauth_destination, "
      "defer_unauth_destination or reject (with "
      "smtpd_recipient_restrictions).")
P_BOOL(smtpd_sasl_auth_enable, "no",
       "Offer SMTP AUTH (RFC 4954) through Cyrus SASL.")
P_BOOL(smtpd_sasl_authenticated_header, "no",
       "Put the SASL login name in the Received: header "
       "(\"Authenticated sender: name\").")
P_STR(smtpd_sasl_exceptions_networks, "",
      "Clients that are not offered AUTH in the EHLO reply.")
P_TIME(smtpd_sasl_failure_delay, "2s", 's', 0, 60,
       "Postern: how long smtpd waits before each 535 reply to a failed "
       "AUTH, to slow down password guessing.")
P_STR(smtpd_sasl_local_domain, "",
      "The SASL realm of login names without @domain.")
P_STR(smtpd_sasl_path, "smtpd",
      "The Cyrus SASL application name: extra Cyrus options may go into "
      "$config_directory/sasl/NAME.conf (the system /etc/sasl2 is not "
      "read).")
P_INT(smtpd_sasl_response_limit, "12288", 1, 1000000,
      "The longest SASL response line a client may send.")
P_STR(smtpd_sasl_security_options, "noanonymous",
      "SASL mechanism restrictions without TLS: noplaintext, noactive, "
      "nodictionary, noanonymous, forward_secrecy, mutual_auth.")
P_STR(smtpd_sasl_service, "smtp",
      "The service name smtpd gives Cyrus SASL.")
P_STR(smtpd_sasl_tls_security_options, "$smtpd_sasl_security_options",
      "SASL mechanism restrictions over TLS.")
P_STR(smtpd_sasl_type, "cyrus",
      "The SASL implementation; Postern has cyrus only.")
P_STR(smtpd_sender_login_maps, "",
      "Tables mapping a sender address to the SASL login names that may "
      "use it (reject_sender_login_mismatch and friends).")
P_STR(smtpd_sender_restrictions, "",
      "Restrictions on the MAIL FROM address.")
P_INT(smtpd_soft_error_limit, "10", 0, 1000000,
      "The number of errors after which smtpd slows down.")
P_TIME(smtpd_starttls_timeout, "${stress?{10}:{300}}s", 's', 1, 86400,
       "How long the TLS handshake after STARTTLS (or on the smtps port) "
       "may take.")
P_TIME(smtpd_timeout, "${stress?{10}:{300}}s", 's', 1, 86400,
       "How long smtpd waits for each client command and each piece of "
       "message data.")
P_BOOL(smtpd_tls_auth_only, "yes",
       "Offer and accept AUTH only over TLS. Postern's default is yes "
       "(Postfix: no): passwords never cross the network in the clear.")
P_STR(smtpd_tls_cert_file, "",
      "The server certificate (PEM, with its chain after it); with "
      "smtpd_tls_key_file.")
P_STR(smtpd_tls_chain_files, "",
      "PEM files with private keys each followed by its certificate "
      "chain (an RSA and an ECDSA one may be given together); replaces "
      "the cert/key file parameters.")
P_STR(smtpd_tls_ciphers, "medium",
      "The cipher grade with opportunistic TLS: high or medium.")
P_STR(smtpd_tls_eccert_file, "",
      "A second (ECDSA) server certificate, next to smtpd_tls_cert_file.")
P_STR(smtpd_tls_eckey_file, "$smtpd_tls_eccert_file",
      "The private key of smtpd_tls_eccert_file.")
P_STR(smtpd_tls_exclude_ciphers, "",
      "Ciphers or OpenSSL cipher aliases never to use.")
P_STR(smtpd_tls_key_file, "$smtpd_tls_cert_file",
      "The private key of smtpd_tls_cert_file.")
P_INT(smtpd_tls_loglevel, "0", 0, 4,
      "TLS logging: 0 failures only, 1 one line per TLS session, 2 also "
      "handshake progress.")
P_STR(smtpd_tls_mandatory_ciphers, "medium",
      "The cipher grade when TLS is required (security level encrypt).")
P_STR(smtpd_tls_mandatory_exclude_ciphers, "",
      "Further ciphers never to use when TLS is required.")
P_STR(smtpd_tls_mandatory_protocols, ">=TLSv1.2",
      "The TLS versions allowed when TLS is required. Postern: TLS 1.2 "
      "and 1.3 (Postfix: >=TLSv1).")
P_STR(smtpd_tls_protocols, ">=TLSv1.2",
      "The TLS versions allowed with opportunistic TLS, in Postfix syntax "
      "(\">=TLSv1.2\", \"!TLSv1, !TLSv1.1\"). Postern: TLS 1.2 and 1.3 "
      "(Postfix: >=TLSv1).")
P_BOOL(smtpd_tls_received_header, "no",
       "Record the TLS version and cipher in the Received: header.")
P_STR(smtpd_tls_security_level, "",
      "TLS in the SMTP server: none (empty), may (offer STARTTLS), "
      "encrypt (require it before MAIL and AUTH).")
P_TIME(smtpd_tls_session_cache_timeout, "3600s", 's', 0, 8640000,
       "How long a TLS session may be resumed (the lifetime of session "
       "tickets; 0 turns resumption off).")
P_BOOL(smtpd_tls_wrappermode, "no",
       "Start TLS at connect, without STARTTLS (the smtps/submissions "
       "port 465, RFC 8314).")
P_BOOL(smtputf8_enable, "${{$compatibility_level} <level {1} ? {no} : {yes}}",
       "Support SMTPUTF8 (RFC 6531): UTF-8 addresses and headers.")
P_BOOL(soft_bounce, "no",
       "Turn permanent delivery failures into temporary ones (for tests "
       "and migrations); also 5xx replies of smtpd become 4xx.")
P_TIME(stop_grace_time, "10s", 's', 0, 3600,
       "On postern stop, how long master lets running sessions finish "
       "before it kills them.")
P_STR(stress, "",
      "Set by master under overload. Read-only.")
P_BOOL(strict_rfc821_envelopes, "no",
       "Require <> around MAIL FROM and RCPT TO addresses and refuse "
       "comments and phrases in them.")
P_BOOL(swap_bangpath, "yes",
       "Rewrite site!user to user@site.")
P_STR(syslog_name, "${multi_instance_name?{$multi_instance_name}:{postern}}",
      "The prefix of every log line: syslog_name/program[pid].")
P_STR(tls_eecdh_auto_curves, "X25519 X448 prime256v1 secp521r1 secp384r1",
      "The key-exchange groups offered, in order; names OpenSSL does not "
      "know are skipped.")
P_STR(tls_high_cipherlist, "aNULL:-aNULL:HIGH:@STRENGTH",
      "The OpenSSL cipher list of the high grade.")
P_STR(tls_medium_cipherlist, "aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH",
      "The OpenSSL cipher list of the medium grade.")
P_BOOL(tls_preempt_cipherlist, "no",
       "Use the server's cipher order instead of the client's.")
P_STR(tls_session_ticket_key_file, "$data_directory/tls_ticket_secret",
      "Postern: the secret (32 random bytes, created when missing) from "
      "which every process derives the rotating TLS session ticket keys; "
      "empty turns resumption off.")
P_STR(transport_maps, "",
      "Tables mapping recipients and domains to transport:nexthop.")
P_INT(unknown_address_reject_code, "450", 400, 599,
      "The reply code for reject_unknown_recipient_domain when the domain "
      "has no DNS records.")
P_INT(unknown_local_recipient_reject_code, "550", 400, 599,
      "The reply code for unknown users of mydestination.")
P_INT(unknown_virtual_alias_reject_code, "550", 400, 599,
      "The reply code for unknown users of virtual_alias_domains.")
P_INT(unknown_virtual_mailbox_reject_code, "550", 400, 599,
      "The reply code for unknown users of virtual_mailbox_domains.")
P_STR(virtual_alias_domains, "$virtual_alias_maps",
      "Domains whose every address is an alias in virtual_alias_maps.")
P_INT(virtual_alias_expansion_limit, "1000", 1, 100000,
      "The most addresses one recipient may expand to in "
      "virtual_alias_maps.")
P_STR(virtual_alias_maps, "$virtual_maps",
      "Tables that map recipients to other addresses, recursively, in "
      "cleanup (virtual(5)).")
P_INT(virtual_alias_recursion_limit, "1000", 1, 100000,
      "The deepest nesting of virtual_alias_maps expansion.")
P_STR(virtual_gid_maps, "",
      "The group id of virtual mailbox files (static:5000).")
P_STR(virtual_mailbox_base, "",
      "The directory that virtual_mailbox_maps paths are relative to.")
P_STR(virtual_mailbox_domains, "$virtual_mailbox_maps",
      "Domains delivered to virtual mailboxes.")
P_LONG(virtual_mailbox_limit, "51200000", 0, 1L << 50,
       "The largest virtual mailbox message (0: no limit); over it, "
       "delivery is deferred (mailbox full).")
P_STR(virtual_mailbox_maps, "",
      "Tables of the virtual mailbox users.")
P_STR(virtual_maps, "",
      "Old name of virtual_alias_maps.")
P_INT(virtual_minimum_uid, "100", 0, 0x7fffffff,
      "The smallest uid virtual_uid_maps may give.")
P_STR(virtual_transport, "virtual",
      "The transport for virtual_mailbox_domains.")
P_STR(virtual_uid_maps, "",
      "The user id of virtual mailbox files (static:5000).")
