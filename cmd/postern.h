/*
 * postern.h - subcommands of the postern(1) admin command.
 *
 * Each takes the arguments after the subcommand name (argv[0] is the
 * subcommand) and the config directory given with "postern -c DIR", or
 * NULL; it returns the exit status.
 */
#ifndef POSTERN_CMD_H
#define POSTERN_CMD_H

int     postern_conf_main(int argc, char **argv, const char *config_dir);
int     postern_map_main(int argc, char **argv, const char *config_dir);
int     postern_ctl_main(int argc, char **argv, const char *config_dir);
int     postern_queue_main(int argc, char **argv, const char *config_dir);
int     postern_user_main(int argc, char **argv, const char *config_dir);

#endif
