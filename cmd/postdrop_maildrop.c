/*
 * postdrop_maildrop - the maildrop file checks postdrop shares with
 * pickup, compiled into postdrop.  The code lives in pickup/maildrop.c
 * until it moves to lib/mail/.
 */
#include "../pickup/maildrop.c"
