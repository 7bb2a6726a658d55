"""Writes the `config` target's libFuzzer dictionary to stdout: every field name and enum
value of the plugin configuration's JSON Schema (the one `canary-tagger schema` prints and
envoyfilter/config.schema.json holds), quoted as JSON, plus JSON punctuation and the value
shapes the compiler parses (value sources, CIDRs, percents). Usage:

    python3 fuzz/config_dict.py envoyfilter/config.schema.json > DICT
"""

import json
import sys

TOKENS = [
    "{", "}", "[", "]", ":", ",", "true", "false", "null", "0", "1", "100", "50.5", "1e2", "-1",
    '"header:', '"cookie:', '"query:', '"source_ip"', '":path"', '":authority"',
    '"10.0.0.0/8"', '"::/0"', '"2001:db8::/32"', '"::ffff:1.2.3.4"', "/32", "/128",
    '".*Chrome.*"', '"(?i)a|b"', '"[a-z]+"', '"\\u0000"', '"\\n"', '"\\""',
]


def names(schema):
    found = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "properties" and isinstance(value, dict):
                    found.update(value)
                if key == "enum":
                    found.update(v for v in value if isinstance(v, str))
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(schema)
    return sorted(found)


def entry(text):
    escaped = "".join(
        "\\" + c if c in '"\\' else c if 32 <= ord(c) < 127 else "\\x%02x" % ord(c) for c in text
    )
    return '"%s"' % escaped


def main():
    with open(sys.argv[1]) as schema_file:
        schema = json.load(schema_file)
    for name in names(schema):
        print(entry('"%s"' % name))
        print(entry('"%s":' % name))
    for token in TOKENS:
        print(entry(token))


main()
