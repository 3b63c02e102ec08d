"""Write bouncegen(1) from the command's own argparse parser (debian/rules, at build time), so the
manual page never drifts from `bouncegen --help`. argparse-manpage's formatter (Debian's
python3-argparse-manpage) does the groff; its command-line tool is not used because it stamps
today's date into the page: the same source must give the same bytes.
    python3 debian/manpage.py OUTFILE     (bouncegen importable, as in debian/rules)
"""

import os
import sys

# argparse wraps usage lines to the terminal's width: a fixed width, whatever builds the package.
os.environ["COLUMNS"] = "80"

from build_manpages.manpage import Manpage  # noqa: E402

from bouncegen import cli  # noqa: E402

parser = cli.parser()
# The NAME line (whatis) and the sections argparse-manpage adds after the options.
parser.man_short_description = "stop joe-job backscatter at the Postfix MX"
examples = cli.TOP_EPILOG.split("\n", 1)[1].strip("\n")
parser._manpage = [
    {"heading": "examples", "content": examples},
    {"heading": "see also", "content": "postfix(1), spamassassin(1), spamd(8p), systemctl(1); "
                                       "/usr/share/doc/bouncegen/README.md"},
]
with open(sys.argv[1], "w", encoding="utf-8") as out:
    out.write(str(Manpage(parser)))
