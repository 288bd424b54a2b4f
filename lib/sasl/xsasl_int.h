/*
 * xsasl_int - what the server (xsasl.c) and client (xsasl_client.c)
 * sides of lib/sasl share.
 */
#ifndef POSTERN_XSASL_INT_H
#define POSTERN_XSASL_INT_H

#include <sasl/sasl.h>

#include "sasl/xsasl.h"

typedef int (*XSASL_CB_FN)(void);

/* libsasl2 takes every callback as int (*)(void); via void (*)(void). */
#define XSASL_CB(fn)    ((XSASL_CB_FN) (void (*)(void)) (fn))

/* The library's log messages, without secrets; for SASL_CB_LOG. */
int     xsasl_log(void *context, int level, const char *message);

/* Base64 both ways (decode: -1 when the text is not base64). */
int     xsasl_decode64(const char *b64, STRBUF *out);
void    xsasl_encode64(const char *data, unsigned len, STRBUF *out);

/* Zero a buffer that held a decoded exchange (a password), then free it. */
void    xsasl_wipe_free(STRBUF **bufp);

#endif
