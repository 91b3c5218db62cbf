/* win32_compat.h: what the examples would take from windows.h, and the conversions
 * glibc forces on programs written for Windows.
 *
 * - Sleep(milliseconds), as windows.h declares it.
 * - Windows programs print wide strings with wprintf(L"%s") and receive wide arguments
 *   in wmain. On Linux wprintf works on 32-bit wchar_t, never on BITS' 16-bit WCHAR
 *   strings, and main receives UTF-8; so the examples print through print_wide and
 *   convert their arguments with widen. Each place that uses them is marked "glibc:".
 */
#ifndef QMGR_EXAMPLES_WIN32_COMPAT_H
#define QMGR_EXAMPLES_WIN32_COMPAT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bits.h>

static inline void Sleep(DWORD dwMilliseconds)
{
    struct timespec pause;
    pause.tv_sec = (time_t)(dwMilliseconds / 1000);
    pause.tv_nsec = (long)(dwMilliseconds % 1000) * 1000000L;
    nanosleep(&pause, NULL);
}

/* Writes a NUL-terminated UTF-16 string to `out` as UTF-8 (an unpaired surrogate becomes
 * U+FFFD). */
static inline void fprint_wide(FILE *out, const WCHAR *text)
{
    for (; text != NULL && *text != 0; text++) {
        unsigned long code = *text;
        if (code >= 0xD800 && code <= 0xDBFF && text[1] >= 0xDC00 && text[1] <= 0xDFFF) {
            code = 0x10000 + ((code - 0xD800) << 10) + (text[1] - 0xDC00);
            text++;
        } else if (code >= 0xD800 && code <= 0xDFFF) {
            code = 0xFFFD;
        }
        if (code < 0x80) {
            fputc((int)code, out);
        } else if (code < 0x800) {
            fputc((int)(0xC0 | (code >> 6)), out);
            fputc((int)(0x80 | (code & 0x3F)), out);
        } else if (code < 0x10000) {
            fputc((int)(0xE0 | (code >> 12)), out);
            fputc((int)(0x80 | ((code >> 6) & 0x3F)), out);
            fputc((int)(0x80 | (code & 0x3F)), out);
        } else {
            fputc((int)(0xF0 | (code >> 18)), out);
            fputc((int)(0x80 | ((code >> 12) & 0x3F)), out);
            fputc((int)(0x80 | ((code >> 6) & 0x3F)), out);
            fputc((int)(0x80 | (code & 0x3F)), out);
        }
    }
}

static inline void print_wide(const WCHAR *text)
{
    fprint_wide(stdout, text);
}

/* A malloc'ed UTF-16 copy of a UTF-8 string (NULL when out of memory); bytes that are
 * not UTF-8 become U+FFFD. */
static inline WCHAR *widen(const char *text)
{
    size_t length = strlen(text);
    WCHAR *wide = (WCHAR *)malloc((2 * length + 1) * sizeof(WCHAR));
    size_t units = 0;
    const unsigned char *p = (const unsigned char *)text;
    if (wide == NULL) {
        return NULL;
    }
    while (*p != 0) {
        unsigned long code = 0xFFFD;
        int extra = 0;
        if (*p < 0x80) {
            code = *p;
        } else if ((*p & 0xE0) == 0xC0) {
            code = *p & 0x1F;
            extra = 1;
        } else if ((*p & 0xF0) == 0xE0) {
            code = *p & 0x0F;
            extra = 2;
        } else if ((*p & 0xF8) == 0xF0) {
            code = *p & 0x07;
            extra = 3;
        }
        p++;
        for (; extra > 0; extra--) {
            if ((*p & 0xC0) != 0x80) {
                code = 0xFFFD;
                break;
            }
            code = (code << 6) | (*p & 0x3F);
            p++;
        }
        if (code >= 0x10000) {
            code -= 0x10000;
            wide[units++] = (WCHAR)(0xD800 + (code >> 10));
            wide[units++] = (WCHAR)(0xDC00 + (code & 0x3FF));
        } else {
            wide[units++] = (WCHAR)code;
        }
    }
    wide[units] = 0;
    return wide;
}

#endif
