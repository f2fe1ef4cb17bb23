/*
 * c-worker: an example consumer, in C, of the events symbridge stores in
 * JetStream (stream SYMPHONY, subjects symphony.>).
 *
 * It joins a durable pull consumer (default "workers") that any number of
 * workers share, Go and C alike: each message goes to one of them, and a
 * message a worker took but did not acknowledge (it crashed, was killed)
 * goes to another one after the consumer's AckWait.
 *
 * For each message it prints one line, appends "<stream seq> <Nats-Msg-Id>"
 * to the --record file (flushed) and then acknowledges the message with
 * natsMsg_AckSync, which waits for the server's confirmation: a message this
 * worker recorded and acknowledged will not be delivered again.
 *
 * Built against the NATS C client (cnats) 3.4.1, Debian's libnats-dev.
 * See README.md next to this file.
 */

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

#define PROG "c-worker"

#define FETCH_TIMEOUT_MS   1000   /* one pull waits this long at most */
#define ACK_WAIT_MS        1500   /* one AckSync waits this long for the server */
#define SNIPPET_CHARS      60     /* characters of message text printed */
#define SNIPPET_SCAN_BYTES (256 * 1024) /* markup read to find them, at most */
#define ERR_LOG_EVERY_MS   10000  /* a repeated fetch error is logged this often */

/* Set by the signal handler, read by the loop. */
static volatile sig_atomic_t stop_requested = 0;

/* Set before the connection is closed on purpose: the connection callbacks
 * then stay quiet. */
static volatile sig_atomic_t closing = 0;

static void
on_signal(int sig)
{
    (void) sig;
    stop_requested = 1;
}

/* ------------------------------------------------------------------------ */
/* Logging                                                                  */
/* ------------------------------------------------------------------------ */

static void
vlogf_(const char *fmt, va_list ap)
{
    fputs(PROG ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    fflush(stderr);
}

static void
logf_(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlogf_(fmt, ap);
    va_end(ap);
}

/* Reason for a failed cnats call: the library's last error text of this
 * thread when it is about the same status (it is more precise than the
 * status text), else the status text. (cnats has no public call to clear
 * the last error, hence the status check.) */
static const char *
nats_reason(natsStatus s)
{
    natsStatus  last = NATS_OK;
    const char  *txt = nats_GetLastError(&last);

    if ((last == s) && (txt != NULL) && (txt[0] != '\0'))
        return txt;
    return natsStatus_GetText(s);
}

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps up to ms milliseconds, in short steps so that a signal ends it. */
static void
sleep_unless_stopped(int64_t ms)
{
    while ((ms > 0) && !stop_requested)
    {
        int64_t step = (ms > 100 ? 100 : ms);

        nats_Sleep(step);
        ms -= step;
    }
}

/* ------------------------------------------------------------------------ */
/* Flags                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct
{
    const char  *server;
    const char  *creds;
    const char  *stream;
    const char  *durable;
    const char  *filter;
    const char  *record;
    int         batch;
    int64_t     max_ack_pending;
    int64_t     ack_wait_ns;
    bool        quiet;

} options;

static void
usage(FILE *f)
{
    fprintf(f,
"usage: " PROG " [flags]\n"
"\n"
"Joins the durable pull consumer --durable of --stream (creating it when it\n"
"does not exist yet) and handles its messages until SIGTERM or SIGINT. Any\n"
"number of workers, Go or C, can share the consumer.\n"
"\n"
"Per message: one line on stdout\n"
"  <stream seq> <Symphony-Event-Type> <Symphony-Stream-Type> initiator=<user id> text=<snippet>\n"
"(\"-\" for what is missing), then the --record line, then a synchronous ack.\n"
"\n"
"Flags (--flag value or --flag=value):\n"
"  --server URL            NATS server URL(s), comma-separated (default: $NATS_URL,\n"
"                          else nats://127.0.0.1:4222)\n"
"  --creds FILE            NATS credentials file (default: none)\n"
"  --stream NAME           the stream symbridge writes to (default SYMPHONY)\n"
"  --durable NAME          durable consumer the workers share (default workers)\n"
"  --filter SUBJECT        subject filter of the consumer, when this worker creates it\n"
"                          (default symphony.>)\n"
"  --max-ack-pending N     MaxAckPending of the consumer, when this worker creates it\n"
"                          (default 1000; -1 for no limit)\n"
"  --ack-wait DURATION     AckWait of the consumer, when this worker creates it: how long\n"
"                          a message may stay un-acked before the server redelivers it\n"
"                          (default 30s; Go syntax: 500ms, 2s, 1m30s)\n"
"  --batch N               messages asked for per pull (default 10)\n"
"  --record FILE           append \"<stream seq> <Nats-Msg-Id>\" per message handled to FILE,\n"
"                          flushed before the ack\n"
"  --quiet                 no line per message\n"
"  --help                  this text\n"
"\n"
"Exit status: 0 after SIGTERM/SIGINT, 1 on a fatal error (no such stream, the consumer\n"
"cannot be created, bound or was deleted, --record cannot be written), 2 on bad usage.\n");
}

static int
usage_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlogf_(fmt, ap);
    va_end(ap);
    fputs(PROG ": run '" PROG " --help' for usage\n", stderr);
    return 2;
}

/* Parses a decimal integer in [min, max]. */
static bool
parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char        *end = NULL;
    long long   v;

    if ((s == NULL) || (*s == '\0'))
        return false;
    errno = 0;
    v = strtoll(s, &end, 10);
    if ((errno != 0) || (end == s) || (*end != '\0'))
        return false;
    if ((v < min) || (v > max))
        return false;
    *out = (int64_t) v;
    return true;
}

/* Parses a Go-style duration ("300ms", "2s", "1m30s", "1.5h") into
 * nanoseconds. Only positive durations are accepted. */
static bool
parse_duration(const char *s, int64_t *out_ns)
{
    static const struct { const char *unit; double ns; } units[] = {
        { "ns", 1.0 }, { "us", 1e3 }, { "\xc2\xb5s", 1e3 }, { "\xce\xbcs", 1e3 },
        { "ms", 1e6 }, { "s", 1e9 }, { "m", 60e9 }, { "h", 3600e9 },
    };
    double      total = 0.0;
    const char  *p    = s;

    if ((s == NULL) || (*s == '\0'))
        return false;

    while (*p != '\0')
    {
        double  v       = 0.0;
        double  scale   = 1.0;
        bool    digits  = false;
        size_t  i;
        size_t  best    = 0;
        double  unit_ns = 0.0;

        while ((*p >= '0') && (*p <= '9'))
        {
            v = v * 10.0 + (double) (*p - '0');
            digits = true;
            p++;
        }
        if (*p == '.')
        {
            p++;
            while ((*p >= '0') && (*p <= '9'))
            {
                scale /= 10.0;
                v += (double) (*p - '0') * scale;
                digits = true;
                p++;
            }
        }
        if (!digits)
            return false;

        /* Longest unit that matches ("ms" before "m"). */
        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        {
            size_t n = strlen(units[i].unit);

            if ((n > best) && (strncmp(p, units[i].unit, n) == 0))
            {
                best = n;
                unit_ns = units[i].ns;
            }
        }
        if (best == 0)
            return false;
        p += best;
        total += v * unit_ns;
        if (total > 9.2e18)
            return false;
    }
    if (total < 1.0)
        return false;
    *out_ns = (int64_t) total;
    return true;
}

/* Parses argv into o. Returns -1 to go on, or an exit code (0 after --help,
 * 2 on a usage error). */
static int
parse_flags(int argc, char **argv, options *o)
{
    int i;

    o->server          = getenv("NATS_URL"); /* as the nats CLI and the Go worker */
    if (o->server == NULL || o->server[0] == '\0')
        o->server = "nats://127.0.0.1:4222";
    o->creds           = NULL;
    o->stream          = "SYMPHONY";
    o->durable         = "workers";
    o->filter          = "symphony.>";
    o->record          = NULL;
    o->batch           = 10;
    o->max_ack_pending = 1000;
    o->ack_wait_ns     = (int64_t) 30 * 1000000000;
    o->quiet           = false;

    for (i = 1; i < argc; i++)
    {
        const char  *arg   = argv[i];
        const char  *name  = NULL;
        const char  *value = NULL;
        const char  *eq    = NULL;
        char        namebuf[64];
        size_t      nlen;

        if (strcmp(arg, "--") == 0)
        {
            if (i + 1 < argc)
                return usage_error("unexpected argument '%s'", argv[i + 1]);
            break;
        }
        /* Long flags; one dash is accepted too, like Go's flag package. */
        if ((arg[0] != '-') || (arg[1] == '\0'))
            return usage_error("unexpected argument '%s'", arg);
        name = arg + 1;
        if (*name == '-')
            name++;
        eq = strchr(name, '=');
        nlen = (eq != NULL ? (size_t) (eq - name) : strlen(name));
        if ((nlen == 0) || (nlen >= sizeof(namebuf)))
            return usage_error("unknown flag '%s'", arg);
        memcpy(namebuf, name, nlen);
        namebuf[nlen] = '\0';
        name = namebuf;

        if ((strcmp(name, "help") == 0) || (strcmp(name, "h") == 0))
        {
            if (eq != NULL)
                return usage_error("flag --%s takes no value", name);
            usage(stdout);
            return 0;
        }
        if (strcmp(name, "quiet") == 0)
        {
            if ((eq != NULL) && (strcmp(eq + 1, "true") != 0) && (strcmp(eq + 1, "false") != 0))
                return usage_error("--quiet: bad value '%s' (true or false)", eq + 1);
            o->quiet = ((eq == NULL) || (strcmp(eq + 1, "true") == 0));
            continue;
        }

        if ((strcmp(name, "server") != 0) && (strcmp(name, "creds") != 0)
            && (strcmp(name, "stream") != 0) && (strcmp(name, "durable") != 0)
            && (strcmp(name, "filter") != 0) && (strcmp(name, "record") != 0)
            && (strcmp(name, "batch") != 0) && (strcmp(name, "max-ack-pending") != 0)
            && (strcmp(name, "ack-wait") != 0))
        {
            return usage_error("unknown flag '%s'", arg);
        }

        if (eq != NULL)
            value = eq + 1;
        else if (i + 1 < argc)
            value = argv[++i];
        else
            return usage_error("flag --%s needs a value", name);

        if (*value == '\0')
            return usage_error("flag --%s: empty value", name);

        if (strcmp(name, "server") == 0)
            o->server = value;
        else if (strcmp(name, "creds") == 0)
            o->creds = value;
        else if (strcmp(name, "stream") == 0)
        {
            if (strpbrk(value, ".*> \t") != NULL)
                return usage_error("--stream '%s': a stream name cannot contain '.', '*', '>' or spaces", value);
            o->stream = value;
        }
        else if (strcmp(name, "durable") == 0)
        {
            if (strpbrk(value, ".*> \t") != NULL)
                return usage_error("--durable '%s': a consumer name cannot contain '.', '*', '>' or spaces", value);
            o->durable = value;
        }
        else if (strcmp(name, "filter") == 0)
            o->filter = value;
        else if (strcmp(name, "record") == 0)
            o->record = value;
        else if (strcmp(name, "batch") == 0)
        {
            int64_t v;

            if (!parse_int(value, 1, 100000, &v))
                return usage_error("--batch '%s': want an integer from 1 to 100000", value);
            o->batch = (int) v;
        }
        else if (strcmp(name, "max-ack-pending") == 0)
        {
            int64_t v;

            if (!parse_int(value, -1, INT_MAX, &v) || (v == 0))
                return usage_error("--max-ack-pending '%s': want a positive integer (or -1 for no limit)", value);
            o->max_ack_pending = v;
        }
        else if (strcmp(name, "ack-wait") == 0)
        {
            if (!parse_duration(value, &o->ack_wait_ns))
                return usage_error("--ack-wait '%s': want a positive duration such as 500ms, 30s, 1m", value);
        }
    }
    return -1;
}

/* ------------------------------------------------------------------------ */
/* Payload: just enough JSON scanning for one line                          */
/* ------------------------------------------------------------------------ */

static bool
is_ws(unsigned char c)
{
    return (c == ' ') || (c == '\t') || (c == '\n') || (c == '\r');
}

/* Index of the first occurrence of needle in p[from:to), or to. */
static size_t
find_bytes(const unsigned char *p, size_t from, size_t to, const char *needle)
{
    size_t nl = strlen(needle);
    size_t i;

    if ((nl == 0) || (to < nl) || (from > to - nl))
        return to;
    for (i = from; i + nl <= to; i++)
    {
        if ((p[i] == (unsigned char) needle[0]) && (memcmp(p + i, needle, nl) == 0))
            return i;
    }
    return to;
}

/* Finds "key" followed by ':' in p[from:to) and returns the index of its
 * value's first byte (whitespace skipped), or to. *next gets the index to
 * search again from. */
static size_t
find_key(const unsigned char *p, size_t from, size_t to, const char *key, size_t *next)
{
    char    quoted[64];
    size_t  i = from;

    if (strlen(key) + 3 > sizeof(quoted))
        return to;
    snprintf(quoted, sizeof(quoted), "\"%s\"", key);

    for (;;)
    {
        size_t j;

        i = find_bytes(p, i, to, quoted);
        if (i >= to)
            return to;
        j = i + strlen(quoted);
        i = j;
        while ((j < to) && is_ws(p[j]))
            j++;
        if ((j >= to) || (p[j] != ':'))
            continue;
        j++;
        while ((j < to) && is_ws(p[j]))
            j++;
        if (j >= to)
            return to;
        if (next != NULL)
            *next = j;
        return j;
    }
}

/* p[i] is '{' or '['; returns the index just past its matching bracket
 * (strings are skipped), or to when the value is cut short. */
static size_t
skip_container(const unsigned char *p, size_t i, size_t to)
{
    int     depth = 0;
    bool    in_str = false;

    for (; i < to; i++)
    {
        unsigned char c = p[i];

        if (in_str)
        {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"')
            in_str = true;
        else if ((c == '{') || (c == '['))
            depth++;
        else if ((c == '}') || (c == ']'))
        {
            if (--depth == 0)
                return i + 1;
        }
    }
    return to;
}

/* Writes the initiator's user id into out ("-" when there is none). */
static void
extract_initiator(const unsigned char *p, size_t n, char *out, size_t outsz)
{
    size_t  i, end, u, k = 0;

    snprintf(out, outsz, "-");

    i = find_key(p, 0, n, "initiator", NULL);
    if ((i >= n) || (p[i] != '{'))
        return;
    end = skip_container(p, i, n);
    u = find_key(p, i, end, "userId", NULL);
    if (u >= end)
        return;

    if (p[u] == '"')
    {
        /* A string id: keep its plain characters. */
        for (u++; (u < end) && (p[u] != '"') && (k + 1 < outsz) && (k < 40); u++)
        {
            unsigned char c = p[u];

            if (((c >= '0') && (c <= '9')) || ((c >= 'a') && (c <= 'z'))
                || ((c >= 'A') && (c <= 'Z')) || (c == '-') || (c == '_') || (c == '.'))
                out[k++] = (char) c;
        }
    }
    else
    {
        if ((p[u] == '-') && (k + 1 < outsz))
            out[k++] = (char) p[u++];
        for (; (u < end) && (p[u] >= '0') && (p[u] <= '9') && (k + 1 < outsz) && (k < 24); u++)
            out[k++] = (char) p[u];
    }
    if ((k == 0) || ((k == 1) && (out[0] == '-')))
        snprintf(out, outsz, "-");
    else
        out[k] = '\0';
}

static int
hexval(unsigned char c)
{
    if ((c >= '0') && (c <= '9')) return c - '0';
    if ((c >= 'a') && (c <= 'f')) return c - 'a' + 10;
    if ((c >= 'A') && (c <= 'F')) return c - 'A' + 10;
    return -1;
}

/* Reads 4 hex digits at p[i:to); returns the value or -1. */
static long
hex4(const unsigned char *p, size_t i, size_t to)
{
    long    v = 0;
    size_t  k;

    if (i + 4 > to)
        return -1;
    for (k = 0; k < 4; k++)
    {
        int h = hexval(p[i + k]);

        if (h < 0)
            return -1;
        v = (v << 4) | h;
    }
    return v;
}

static size_t
put_utf8(unsigned char *out, unsigned long cp)
{
    if (cp < 0x80)
    {
        out[0] = (unsigned char) cp;
        return 1;
    }
    if (cp < 0x800)
    {
        out[0] = (unsigned char) (0xC0 | (cp >> 6));
        out[1] = (unsigned char) (0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000)
    {
        out[0] = (unsigned char) (0xE0 | (cp >> 12));
        out[1] = (unsigned char) (0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char) (0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char) (0xF0 | (cp >> 18));
    out[1] = (unsigned char) (0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char) (0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char) (0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the valid UTF-8 sequence at s[0:n), or 0 when it is not one. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
    size_t  len, k;
    unsigned long cp;

    if (n == 0)
        return 0;
    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xE0) == 0xC0)      { len = 2; cp = s[0] & 0x1F; }
    else if ((s[0] & 0xF0) == 0xE0) { len = 3; cp = s[0] & 0x0F; }
    else if ((s[0] & 0xF8) == 0xF0) { len = 4; cp = s[0] & 0x07; }
    else
        return 0;
    if (len > n)
        return 0;
    for (k = 1; k < len; k++)
    {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3F);
    }
    if (((len == 2) && (cp < 0x80)) || ((len == 3) && (cp < 0x800))
        || ((len == 4) && ((cp < 0x10000) || (cp > 0x10FFFF)))
        || ((cp >= 0xD800) && (cp <= 0xDFFF)))
        return 0;
    return len;
}

/* The few HTML entities worth decoding in a one-line snippet. */
static size_t
decode_entity(const unsigned char *s, size_t n, unsigned char *out, size_t *used)
{
    static const struct { const char *name; const char *text; } ents[] = {
        { "&amp;", "&" }, { "&lt;", "<" }, { "&gt;", ">" }, { "&quot;", "\"" },
        { "&#39;", "'" }, { "&apos;", "'" }, { "&nbsp;", " " },
    };
    size_t i;

    for (i = 0; i < sizeof(ents) / sizeof(ents[0]); i++)
    {
        size_t l = strlen(ents[i].name);

        if ((l <= n) && (memcmp(s, ents[i].name, l) == 0))
        {
            *used = l;
            out[0] = (unsigned char) ents[i].text[0];
            return 1;
        }
    }
    return 0;
}

/* Writes the text of a MESSAGESENT event into out: the message's markup
 * from the JSON string at p[i] (just past its opening quote) with the JSON
 * escapes undone, tags removed, whitespace folded, cut to SNIPPET_CHARS
 * characters. Writes "-" when there is no text. */
static void
extract_text(const unsigned char *p, size_t i, size_t n, char *out, size_t outsz)
{
    size_t          limit = (n - i > SNIPPET_SCAN_BYTES ? i + SNIPPET_SCAN_BYTES : n);
    unsigned char   *dec  = NULL;
    size_t          dn    = 0;
    size_t          k, o = 0;
    int             chars = 0;
    bool            in_tag = false;
    bool            space_pending = false;

    snprintf(out, outsz, "-");
    dec = malloc(limit - i + 4);
    if (dec == NULL)
        return;

    /* 1. Undo the JSON escapes, up to the closing quote; remove tags. */
    for (k = i; (k < limit) && (p[k] != '"'); k++)
    {
        unsigned char   c = p[k];
        unsigned char   tmp[4];
        size_t          tn = 1;

        if (c == '\\')
        {
            if (k + 1 >= limit)
                break;
            c = p[++k];
            switch (c)
            {
                case 'n': case 'r': case 't': case 'b': case 'f':
                    tmp[0] = ' ';
                    break;
                case 'u':
                {
                    long cp = hex4(p, k + 1, limit);

                    if (cp < 0)
                    {
                        tmp[0] = '?';
                        break;
                    }
                    k += 4;
                    if ((cp >= 0xD800) && (cp <= 0xDBFF) && (k + 2 < limit)
                        && (p[k + 1] == '\\') && (p[k + 2] == 'u'))
                    {
                        long lo = hex4(p, k + 3, limit);

                        if ((lo >= 0xDC00) && (lo <= 0xDFFF))
                        {
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                            k += 6;
                        }
                    }
                    if ((cp >= 0xD800) && (cp <= 0xDFFF))
                        tmp[0] = '?';
                    else if (cp < 0x20)
                        tmp[0] = ' ';
                    else
                        tn = put_utf8(tmp, (unsigned long) cp);
                    break;
                }
                default: /* \" \\ \/ and anything else: the character itself */
                    tmp[0] = c;
                    break;
            }
        }
        else
            tmp[0] = c;

        if ((tn == 1) && (tmp[0] == '<'))
        {
            in_tag = true;
            continue;
        }
        if (in_tag)
        {
            if ((tn == 1) && (tmp[0] == '>'))
            {
                in_tag = false;
                dec[dn++] = ' '; /* "<p>a</p><p>b</p>" reads "a b" */
            }
            continue;
        }
        memcpy(dec + dn, tmp, tn);
        dn += tn;
    }

    /* 2. Entities, control characters, whitespace, UTF-8 and the cut. */
    for (k = 0; (k < dn) && (chars < SNIPPET_CHARS); )
    {
        unsigned char   c = dec[k];
        unsigned char   ent[1];
        size_t          used = 0;
        size_t          len;

        if ((c == '&') && (decode_entity(dec + k, dn - k, ent, &used) == 1))
        {
            c = ent[0];
            k += used;
            len = 1;
        }
        else if (c < 0x80)
        {
            k++;
            len = 1;
        }
        else
        {
            len = utf8_len(dec + k, dn - k);
            if (len == 0)
            {
                c = '?';   /* not UTF-8: one '?' per byte */
                k++;
                len = 1;
            }
        }

        if ((len == 1) && ((c < 0x20) || (c == 0x7F) || (c == ' ')))
        {
            space_pending = (o > 0);
            continue;
        }
        if (space_pending)
        {
            if (o + 1 >= outsz)
                break;
            out[o++] = ' ';
            chars++;
            space_pending = false;
            if (chars >= SNIPPET_CHARS)
                break;
        }
        if (o + len >= outsz)
            break;
        if (len == 1)
            out[o++] = (char) c;
        else
        {
            memcpy(out + o, dec + k, len);
            o += len;
            k += len;
        }
        chars++;
    }
    free(dec);

    while ((o > 0) && (out[o - 1] == ' '))
        o--;
    if (o == 0)
        snprintf(out, outsz, "-");
    else
        out[o] = '\0';
}

/* Text of a MESSAGESENT event, "-" otherwise or when it has none. */
static void
extract_message_text(const unsigned char *p, size_t n, bool is_msg_sent, char *out, size_t outsz)
{
    size_t from = 0, to = n, i, next = 0;

    snprintf(out, outsz, "-");
    if (!is_msg_sent)
        return;

    /* Prefer the message inside "messageSent" when there is one. */
    i = find_key(p, 0, n, "messageSent", NULL);
    if ((i < n) && (p[i] == '{'))
    {
        from = i;
        to = skip_container(p, i, n);
    }
    /* The first "message" whose value is a string ("message":{...} is the
     * object holding it). */
    while (from < to)
    {
        i = find_key(p, from, to, "message", &next);
        if (i >= to)
            return;
        if (p[i] == '"')
        {
            extract_text(p, i + 1, to, out, outsz);
            return;
        }
        from = next;
    }
}

/* A header value fit for one space-separated field: "-" when missing or
 * empty, control characters and spaces replaced by '_'. */
static void
header_field(natsMsg *msg, const char *key, char *out, size_t outsz)
{
    const char  *v = NULL;
    size_t      k = 0;

    if ((natsMsgHeader_Get(msg, key, &v) != NATS_OK) || (v == NULL) || (v[0] == '\0'))
    {
        snprintf(out, outsz, "-");
        return;
    }
    for (; (v[k] != '\0') && (k + 1 < outsz); k++)
    {
        unsigned char c = (unsigned char) v[k];

        out[k] = ((c <= ' ') || (c == 0x7F)) ? '_' : (char) c;
    }
    out[k] = '\0';
}

/* ------------------------------------------------------------------------ */
/* Connection callbacks                                                     */
/* ------------------------------------------------------------------------ */

/* The disconnected and closed callbacks: closure is the line to log, unless
 * the connection is being closed on purpose. */
static void
on_conn_lost(natsConnection *nc, void *closure)
{
    (void) nc;
    if (!closing)
        logf_("%s", (const char *) closure);
}

static void
on_reconnected(natsConnection *nc, void *closure)
{
    char url[256];

    (void) closure;
    if (natsConnection_GetConnectedUrl(nc, url, sizeof(url)) != NATS_OK)
        snprintf(url, sizeof(url), "the server");
    logf_("reconnected to %s", url);
}

static void
on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    (void) nc;
    (void) sub;
    (void) closure;
    logf_("asynchronous error: %s", natsStatus_GetText(err));
}

/* ------------------------------------------------------------------------ */
/* Consumer                                                                 */
/* ------------------------------------------------------------------------ */

/* Appends v to b as a JSON string (quotes included). */
static size_t
json_string(char *b, const char *v)
{
    size_t  n = 0;

    b[n++] = '"';
    for (; *v != '\0'; v++)
    {
        unsigned char c = (unsigned char) *v;

        if ((c == '"') || (c == '\\'))
        {
            b[n++] = '\\';
            b[n++] = (char) c;
        }
        else if (c < 0x20)
            n += (size_t) sprintf(b + n, "\\u%04x", c);
        else
            b[n++] = (char) c;
    }
    b[n++] = '"';
    b[n] = '\0';
    return n;
}

/* Creates the consumer with the server's "create" action: it succeeds when
 * the consumer does not exist or exists with this very configuration, and
 * fails with JSConsumerAlreadyExists (10148) otherwise, leaving the
 * existing consumer as it is. (js_AddConsumer of cnats 3.4.1 has no such
 * action: on a recent server it creates or UPDATES, so a worker losing the
 * creation race with other flags would change the winner's consumer.)
 *
 * The action is honoured by nats-server 2.10 and later (2.9 ignores it and
 * creates or updates, like js_AddConsumer).
 *
 * Returns NATS_OK when created; on an error the server reported, NATS_ERR
 * with *err_code and desc set; NATS_NO_RESPONDERS or NATS_TIMEOUT when the
 * server does not know this API subject (older than 2.9). */
static natsStatus
create_consumer(natsConnection *nc, const options *o, int *err_code, char *desc, size_t descsz)
{
    char        *body = NULL, *subj = NULL;
    size_t      cap, n = 0;
    natsMsg     *reply = NULL;
    natsStatus  s;

    *err_code = 0;
    desc[0] = '\0';

    cap = 6 * (strlen(o->stream) + 2 * strlen(o->durable) + strlen(o->filter)) + 512;
    body = malloc(cap);
    subj = malloc(strlen(o->stream) + strlen(o->durable) + 64);
    if ((body == NULL) || (subj == NULL))
    {
        free(body);
        free(subj);
        return NATS_NO_MEMORY;
    }
    sprintf(subj, "$JS.API.CONSUMER.CREATE.%s.%s", o->stream, o->durable);

    n += (size_t) sprintf(body + n, "{\"stream_name\":");
    n += json_string(body + n, o->stream);
    n += (size_t) sprintf(body + n, ",\"config\":{\"name\":");
    n += json_string(body + n, o->durable);
    n += (size_t) sprintf(body + n, ",\"durable_name\":");
    n += json_string(body + n, o->durable);
    n += (size_t) sprintf(body + n, ",\"deliver_policy\":\"all\",\"ack_policy\":\"explicit\""
                                    ",\"ack_wait\":%" PRId64 ",\"max_ack_pending\":%" PRId64
                                    ",\"replay_policy\":\"instant\",\"filter_subject\":",
                          o->ack_wait_ns, o->max_ack_pending);
    n += json_string(body + n, o->filter);
    sprintf(body + n, "},\"action\":\"create\"}");

    s = natsConnection_RequestString(&reply, nc, subj, body, 5000);
    free(body);
    free(subj);
    if (s != NATS_OK)
        return s;

    {
        const unsigned char *d  = (const unsigned char *) natsMsg_GetData(reply);
        int                 dl  = natsMsg_GetDataLength(reply);
        size_t              rn  = ((d != NULL) && (dl > 0) ? (size_t) dl : 0);
        size_t              e, end, k;

        e = find_key(d, 0, rn, "error", NULL);
        if ((e < rn) && (d[e] == '{'))
        {
            end = skip_container(d, e, rn);
            k = find_key(d, e, end, "err_code", NULL);
            if (k < end)
                *err_code = atoi((const char *) d + k);  /* digits end at ',' or '}' */
            k = find_key(d, e, end, "description", NULL);
            if ((k < end) && (d[k] == '"'))
            {
                size_t m = 0;

                for (k++; (k < end) && (d[k] != '"') && (m + 1 < descsz); k++)
                    desc[m++] = (char) d[k];
                desc[m] = '\0';
            }
            if (desc[0] == '\0')
                snprintf(desc, descsz, "error %d", *err_code);
            s = NATS_ERR;
        }
    }
    natsMsg_Destroy(reply);
    return s;
}

/* Finds the durable consumer or creates it, then binds a pull subscription
 * to it. Returns false (reason logged) on a fatal error. *ack_wait_ns gets
 * the consumer's AckWait. */
static bool
join_consumer(natsConnection *nc, jsCtx *js, const options *o, natsSubscription **sub,
              int64_t *ack_wait_ns)
{
    jsConsumerInfo      *ci   = NULL;
    jsErrCode           jerr  = 0;
    natsStatus          s;
    const char          *subj = NULL;
    jsSubOptions        so;

    s = js_GetConsumerInfo(&ci, js, o->stream, o->durable, NULL, &jerr);
    if ((s != NATS_OK) && (jerr == JSStreamNotFoundErr))
    {
        logf_("stream %s does not exist", o->stream);
        return false;
    }
    if ((s != NATS_OK) && (s != NATS_NOT_FOUND) && (jerr != JSConsumerNotFoundErr))
    {
        logf_("consumer %s/%s: %s", o->stream, o->durable, nats_reason(s));
        return false;
    }
    if (s != NATS_OK)
    {
        /* Not there yet: create it. Workers starting together may race:
         * creating the same consumer twice is fine, and a worker that loses
         * with other flags gets "already exists" and joins the winner's
         * consumer as it is. */
        int     err_code = 0;
        char    desc[256];
        bool    created;

        s = create_consumer(nc, o, &err_code, desc, sizeof(desc));
        if ((s == NATS_NO_RESPONDERS) || (s == NATS_TIMEOUT))
        {
            /* A server without the "create" action (before 2.9): the
             * library's create (or update) it is. */
            jsConsumerConfig cc;

            jsConsumerConfig_Init(&cc);
            cc.Durable       = o->durable;
            cc.AckPolicy     = js_AckExplicit;
            cc.DeliverPolicy = js_DeliverAll;
            cc.FilterSubject = o->filter;
            cc.MaxAckPending = o->max_ack_pending;
            cc.AckWait       = o->ack_wait_ns;
            jerr = 0;
            s = js_AddConsumer(&ci, js, o->stream, &cc, NULL, &jerr);
            jsConsumerInfo_Destroy(ci);
            ci = NULL;
            err_code = (int) jerr;
            if (s != NATS_OK)
                snprintf(desc, sizeof(desc), "%s", nats_reason(s));
        }
        else if ((s != NATS_OK) && (s != NATS_ERR))
            snprintf(desc, sizeof(desc), "%s", nats_reason(s));

        created = (s == NATS_OK);
        if (!created && (err_code == JSStreamNotFoundErr))
        {
            logf_("stream %s does not exist", o->stream);
            return false;
        }
        if (created)
            logf_("created consumer %s/%s (filter %s, ack wait %.3fs, max ack pending %" PRId64 ")",
                  o->stream, o->durable, o->filter, (double) o->ack_wait_ns / 1e9,
                  o->max_ack_pending);

        /* Created or not, the consumer must be there now. */
        jerr = 0;
        s = js_GetConsumerInfo(&ci, js, o->stream, o->durable, NULL, &jerr);
        if (s != NATS_OK)
        {
            if (created)
                logf_("consumer %s/%s: %s", o->stream, o->durable, nats_reason(s));
            else
                logf_("create consumer %s/%s: %s", o->stream, o->durable, desc);
            return false;
        }
        if (!created)
            logf_("consumer %s/%s was created meanwhile by another worker (%s); joining it as it is",
                  o->stream, o->durable, desc);
    }

    if ((ci->Config != NULL) && (ci->Config->DeliverSubject != NULL)
        && (ci->Config->DeliverSubject[0] != '\0'))
    {
        logf_("consumer %s/%s is a push consumer; a pull consumer is needed", o->stream, o->durable);
        jsConsumerInfo_Destroy(ci);
        return false;
    }
    *ack_wait_ns = ((ci->Config != NULL) ? ci->Config->AckWait : o->ack_wait_ns);

    /* Bind to the consumer as it is: Stream and Consumer set, nothing in
     * Config (cnats compares what is set there with the consumer's). The
     * subject, if given, must equal the consumer's filter, so pass the
     * consumer's own, or none when it has several filters. */
    if ((ci->Config != NULL) && (ci->Config->FilterSubject != NULL)
        && (ci->Config->FilterSubject[0] != '\0'))
        subj = ci->Config->FilterSubject;

    jsSubOptions_Init(&so);
    so.Stream   = o->stream;
    so.Consumer = o->durable;

    jerr = 0;
    s = js_PullSubscribe(sub, js, subj, o->durable, NULL, &so, &jerr);
    jsConsumerInfo_Destroy(ci);
    if (s != NATS_OK)
    {
        logf_("bind to consumer %s/%s: %s", o->stream, o->durable, nats_reason(s));
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------------ */
/* Messages                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct
{
    const options   *o;
    FILE            *rec;
    int64_t         ack_wait_ms;    /* the consumer's AckWait */
    uint64_t        handled;
    int             fatal;          /* exit code when not 0 */

} worker;

/* Acks msg and waits for the server's confirmation. A failed ack is tried
 * again (an ack is idempotent) while the message can still be acked: until
 * the consumer's AckWait since it was received, or once more after a stop
 * was requested. Returns whether the server confirmed. */
static bool
ack(natsMsg *msg, int64_t received_ms, int64_t ack_wait_ms)
{
    jsOptions   jo;
    natsStatus  s;
    jsErrCode   jerr = 0;
    bool        last_try = false;

    jsOptions_Init(&jo);
    jo.Wait = ACK_WAIT_MS;

    for (;;)
    {
        if (stop_requested)
            last_try = true;
        s = natsMsg_AckSync(msg, &jo, &jerr);
        if (s == NATS_OK)
            return true;
        if (last_try || (now_ms() - received_ms + 200 >= ack_wait_ms))
        {
            logf_("ack: %s (the server will redeliver the message)", nats_reason(s));
            return false;
        }
        sleep_unless_stopped(200);
    }
}

static void
handle(worker *w, natsMsg *msg, int64_t received_ms)
{
    jsMsgMetaData       *meta = NULL;
    char                seq[32];
    const unsigned char *data = (const unsigned char *) natsMsg_GetData(msg);
    int                 dlen  = natsMsg_GetDataLength(msg);
    size_t              n     = ((data != NULL) && (dlen > 0) ? (size_t) dlen : 0);

    if ((natsMsg_GetMetaData(&meta, msg) == NATS_OK) && (meta != NULL))
        snprintf(seq, sizeof(seq), "%" PRIu64, meta->Sequence.Stream);
    else
        snprintf(seq, sizeof(seq), "-");
    jsMsgMetaData_Destroy(meta);

    if (!w->o->quiet)
    {
        char    etype[128], stype[128], who[48], text[SNIPPET_CHARS * 4 + 8];
        bool    msg_sent;

        header_field(msg, "Symphony-Event-Type", etype, sizeof(etype));
        header_field(msg, "Symphony-Stream-Type", stype, sizeof(stype));
        msg_sent = (strcmp(etype, "MESSAGESENT") == 0)
            || ((strcmp(etype, "-") == 0) && (find_bytes(data, 0, n, "\"messageSent\"") < n));
        if (n > 0)
        {
            extract_initiator(data, n, who, sizeof(who));
            extract_message_text(data, n, msg_sent, text, sizeof(text));
        }
        else
        {
            snprintf(who, sizeof(who), "-");
            snprintf(text, sizeof(text), "-");
        }
        printf("%s %s %s initiator=%s text=%s\n", seq, etype, stype, who, text);
        fflush(stdout);
    }

    if (w->rec != NULL)
    {
        char id[512];

        header_field(msg, "Nats-Msg-Id", id, sizeof(id));
        if ((fprintf(w->rec, "%s %s\n", seq, id) < 0) || (fflush(w->rec) != 0))
        {
            /* Acking a message the record lacks would make the record lie:
             * stop, un-acked; the server redelivers it to another worker. */
            logf_("--record %s: %s; stopping (message %s not acked)",
                  w->o->record, strerror(errno), seq);
            w->fatal = 1;
            return;
        }
    }

    if (ack(msg, received_ms, w->ack_wait_ms))
        w->handled++;
}

/* ------------------------------------------------------------------------ */
/* main                                                                     */
/* ------------------------------------------------------------------------ */

int
main(int argc, char **argv)
{
    options             o;
    worker              w;
    int                 rc;
    natsStatus          s;
    natsOptions         *nopts = NULL;
    natsConnection      *nc    = NULL;
    jsCtx               *js    = NULL;
    natsSubscription    *sub   = NULL;
    int64_t             ack_wait_ns = 0;
    natsStatus          last_err = NATS_OK;
    int64_t             last_err_ms = 0;
    struct sigaction    sa;

    rc = parse_flags(argc, argv, &o);
    if (rc >= 0)
        return rc;

    memset(&w, 0, sizeof(w));
    w.o = &o;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (o.record != NULL)
    {
        w.rec = fopen(o.record, "a");
        if (w.rec == NULL)
        {
            logf_("--record %s: %s", o.record, strerror(errno));
            return 1;
        }
    }

    rc = 1;
    s = natsOptions_Create(&nopts);
    if (s == NATS_OK) s = natsOptions_SetURL(nopts, o.server);
    if (s == NATS_OK) s = natsOptions_SetName(nopts, "symbridge-c-worker");
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(nopts, -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(nopts, 1000);
    if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(nopts, on_conn_lost,
                              (void *) "disconnected from the server; reconnecting");
    if (s == NATS_OK) s = natsOptions_SetReconnectedCB(nopts, on_reconnected, NULL);
    if (s == NATS_OK) s = natsOptions_SetClosedCB(nopts, on_conn_lost, (void *) "connection closed");
    if (s == NATS_OK) s = natsOptions_SetErrorHandler(nopts, on_async_error, NULL);
    if ((s == NATS_OK) && (o.creds != NULL))
        s = natsOptions_SetUserCredentialsFromFiles(nopts, o.creds, NULL);
    if (s != NATS_OK)
    {
        logf_("options: %s", nats_reason(s));
        goto done;
    }

    s = natsConnection_Connect(&nc, nopts);
    if (s != NATS_OK)
    {
        logf_("connect to %s: %s", o.server, nats_reason(s));
        goto done;
    }
    s = natsConnection_JetStream(&js, nc, NULL);
    if (s != NATS_OK)
    {
        logf_("JetStream: %s", nats_reason(s));
        goto done;
    }
    if (!join_consumer(nc, js, &o, &sub, &ack_wait_ns))
        goto done;
    w.ack_wait_ms = ack_wait_ns / 1000000;
    if (w.ack_wait_ms <= 0)
        w.ack_wait_ms = 30000;

    logf_("consuming %s/%s on %s", o.stream, o.durable, o.server);
    rc = 0;

    while (!stop_requested && (w.fatal == 0))
    {
        natsMsgList list = { NULL, 0 };
        jsErrCode   jerr = 0;
        int64_t     received_ms;
        int         i;

        s = natsSubscription_Fetch(&list, sub, o.batch, FETCH_TIMEOUT_MS, &jerr);
        received_ms = now_ms();
        if (s == NATS_TIMEOUT)
        {
            /* Nothing to do for now: ask again. */
            natsMsgList_Destroy(&list);
            continue;
        }
        if (s != NATS_OK)
        {
            natsMsgList_Destroy(&list);
            if (s == NATS_CONNECTION_CLOSED)
            {
                logf_("fetch: %s", nats_reason(s));
                rc = 1;
                break;
            }
            /* A fetch from a deleted consumer fails (no responders): stop
             * then, as the server says the consumer (or stream) is gone.
             * Other errors (disconnected, JetStream restarting, ...) pass:
             * the library reconnects; log (not too often) and try again. */
            if (s != NATS_CONNECTION_DISCONNECTED)
            {
                jsConsumerInfo  *ci = NULL;
                jsErrCode       gerr = 0;

                (void) js_GetConsumerInfo(&ci, js, o.stream, o.durable, NULL, &gerr);
                jsConsumerInfo_Destroy(ci);
                if ((gerr == JSConsumerNotFoundErr) || (gerr == JSStreamNotFoundErr))
                {
                    logf_("consumer %s/%s no longer exists (%s); stopping", o.stream, o.durable,
                          (gerr == JSStreamNotFoundErr ? "stream deleted" : "consumer deleted"));
                    rc = 1;
                    break;
                }
            }
            if ((s != last_err) || (received_ms - last_err_ms >= ERR_LOG_EVERY_MS))
            {
                logf_("fetch: %s (retrying)", nats_reason(s));
                last_err = s;
                last_err_ms = received_ms;
            }
            sleep_unless_stopped(500);
            continue;
        }
        if (last_err != NATS_OK)
        {
            logf_("fetching again");
            last_err = NATS_OK;
        }

        for (i = 0; i < list.Count; i++)
        {
            /* A stop leaves the rest un-acked: natsMsgList_Destroy frees
             * them and the server redelivers them after AckWait. */
            if (stop_requested || (w.fatal != 0))
                break;
            handle(&w, list.Msgs[i], received_ms);
        }
        natsMsgList_Destroy(&list);
    }
    if (w.fatal != 0)
        rc = w.fatal;

done:
    /* natsSubscription_Destroy, not _Unsubscribe or _Drain: those delete a
     * consumer the subscription created. This one was created (or found)
     * before binding, so cnats would not delete it anyway; the durable stays
     * on the server for the other workers either way. */
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    if (nc != NULL)
    {
        closing = 1;
        natsConnection_Close(nc);
        natsConnection_Destroy(nc);
    }
    natsOptions_Destroy(nopts);
    if (w.rec != NULL)
        fclose(w.rec);
    if (rc == 0)
        logf_("stopped after %" PRIu64 " messages", w.handled);
    /* Waits (up to 1s) for the library's threads so that no memory is left
     * behind; nats_Close() alone would not wait. */
    nats_CloseAndWait(1000);
    return rc;
}
