/*
 * fuzz_ids.c - libFuzzer target for the names of SPEC §2
 * (common/base/validate.c): ids (path segments, originator.id), entity types, event
 * types and event ids (UUIDs). The bytes are one name, cut at the first
 * NUL as a decoded path segment or a JSON string would be; whole, they are
 * checked as UTF-8 text (validate_utf8_text, validate_utf8_char: query
 * values, headers, path segments) against fuzzlib's own UTF-8 reader.
 *
 * Each validator is checked against the rule written as a PCRE2 regular
 * expression (a differential check), and validate_event_type's split and
 * validate_uuid's lowercase copy against the input.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzzlib.h"
#include "validate.h"

enum { RE_ID, RE_TYPE, RE_EVENT_TYPE, RE_UUID, RE_COUNT };
static const char *const patterns[RE_COUNT] = {
    "^[A-Za-z0-9._:@-]{1,128}$",
    "^(?=.{1,200}$)[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$",
    "^(?=.{1,200}$)[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)+$",
    "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$",
};
static pcre2_code *re[RE_COUNT];
static pcre2_match_data *md;

static bool matches(int which, const char *s)
{
    return pcre2_match(re[which], (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL) >= 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!md) {
        for (int i = 0; i < RE_COUNT; i++) {
            int code;
            PCRE2_SIZE off;
            re[i] = pcre2_compile((PCRE2_SPTR)patterns[i], PCRE2_ZERO_TERMINATED,
                                  PCRE2_DOLLAR_ENDONLY, &code, &off, NULL);
            if (!re[i])
                fuzzlib_fail("pattern %d does not compile", i);
        }
        md = pcre2_match_data_create(4, NULL);
    }
    /* UTF-8 text (query values, headers, path segments): the raw bytes */
    bool text = fuzzlib_utf8((const char *)data, size) && !memchr(data, '\0', size);
    if (validate_utf8_text((const char *)data, size) != text)
        fuzzlib_fail("validate_utf8_text says %d", !text);
    if (size > 0) {
        unsigned c = data[0];
        size_t lead = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
                                 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        size_t want = lead && lead <= size && fuzzlib_utf8((const char *)data, lead) ? lead : 0;
        size_t k = validate_utf8_char((const char *)data, size);
        if (k != want)
            fuzzlib_fail("validate_utf8_char says %zu, not %zu", k, want);
    }
    char *s = fuzzlib_cstr(data, size);
    size_t elen = 0;
    char uuid[VALIDATE_UUID_LEN];

    if (validate_id(s) != matches(RE_ID, s))
        fuzzlib_fail("validate_id('%s') = %d", s, validate_id(s));
    if (validate_entity_type(s) != matches(RE_TYPE, s))
        fuzzlib_fail("validate_entity_type('%s') = %d", s, validate_entity_type(s));
    bool et = validate_event_type(s, &elen);
    if (et != matches(RE_EVENT_TYPE, s))
        fuzzlib_fail("validate_event_type('%s') = %d", s, et);
    if (et && (strrchr(s, '.') - s != (ptrdiff_t)elen))
        fuzzlib_fail("validate_event_type('%s'): entity part of %zu characters", s, elen);
    bool u = validate_uuid(s, uuid);
    if (u != matches(RE_UUID, s))
        fuzzlib_fail("validate_uuid('%s') = %d", s, u);
    if (u && strcasecmp(uuid, s) != 0)
        fuzzlib_fail("validate_uuid('%s') gave '%s'", s, uuid);
    if (u && strspn(uuid, "0123456789abcdef-") != 36)
        fuzzlib_fail("validate_uuid('%s') gave '%s', not lowercase", s, uuid);
    free(s);
    return 0;
}
