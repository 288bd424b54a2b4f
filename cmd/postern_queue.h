/*
 * postern_queue.h - the parts of "postern queue" (see postern_queue.c).
 */
#ifndef POSTERN_CMD_QUEUE_H
#define POSTERN_CMD_QUEUE_H

/*
 * postern queue show [-ehb] ID... (postcat -q); argv[0] is "show".  The
 * parameters are loaded and the queue directory is the cwd.  Returns the
 * exit status.
 */
int     postern_queue_show(int argc, char **argv);

/*
 * postern queue flush|delete|hold|release|requeue (postqueue -f,
 * postsuper -d/-h/-H/-r); argv[0] is the operation.  As above.
 */
int     postern_queue_admin(int argc, char **argv);

#endif
