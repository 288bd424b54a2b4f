/*
 * sendmail_maildrop - the maildrop file checks sendmail shares with
 * postdrop and pickup, so that it never writes what they refuse.  The
 * code lives in pickup/maildrop.c until it moves to lib/mail/.
 */
#include "../pickup/maildrop.c"
