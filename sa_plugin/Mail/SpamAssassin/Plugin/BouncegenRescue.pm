#
# Mail::SpamAssassin::Plugin::BouncegenRescue - relay rescue for bouncegen's backscatter rules.
#
# Shipped with bouncegen (sa_plugin/Mail/SpamAssassin/Plugin/BouncegenRescue.pm, the path of its
# package) and rendered beside the .cf as BouncegenRescue.pm; loaded by the rendered
# 72_bouncegen.pre with a path relative to that file.

=head1 NAME

Mail::SpamAssassin::Plugin::BouncegenRescue - does a bounce answer mail that left through our relays?

=head1 SYNOPSIS

  loadplugin Mail::SpamAssassin::Plugin::BouncegenRescue BouncegenRescue.pm

  ifplugin Mail::SpamAssassin::Plugin::BouncegenRescue
    bouncegen_relay  smtp1.out.example.org 192.0.2.25/32 2001:db8:25::25/128
    bouncegen_relay  mailout-?.example.net
    bouncegen_domain example.org example.net
    body   __BG_RESCUE        eval:bouncegen_rescue()
    header __BG_RESCUE_MSGID  eval:bouncegen_reply_msgid()
    bouncegen_ledger     sqlite:/var/lib/bouncegen/ledger.db
    bouncegen_ledger_key /etc/bouncegen/ledger.key
    body   __BG_LEDGER_HIT    eval:bouncegen_ledger_hit()
    body   BG_LEDGER_UNAVAIL  eval:bouncegen_ledger_unavail()
  endif

=head1 DESCRIPTION

Stock VBounce (C<welcomelist_bounce_relays>) rescues a bounce when any white-space separated
word of a quoted C<Received:> line equals a relay name: a spammer who greets with our relay's
name (C<from smtp1.out.example.org (unknown [203.0.113.9])>) is rescued too, and addresses are
never looked at. This plugin parses each quoted hop (RFC 5321 time-stamp line:
C<from> X (TCP-info) C<by> Y (comments) ...) and counts only what the receiving MTA wrote:

=over

=item * the C<by> host of a hop, when it is one of our relays (exact name or glob, trailing dot
allowed), or when it is one of our addresses: our relay wrote that hop;

=item * an address of ours in the C<from> clause's TCP-info, as the receiving MTA records it:
C<[192.0.2.25]>, C<[IPv6:2001:db8::25]>, C<[2001:db8::25]:587>, C<(192.0.2.25)> (qmail,
Exchange), C<(user@192.0.2.25)>; whole tokens only, IPv6 in any spelling, IPv4-mapped IPv6 as
IPv4; also the C<from> token itself where it is the address the MTA recorded (Exim
C<from [192.0.2.25] (helo=...)>, Yahoo C<from 192.0.2.25 (EHLO ...)>), never where it is the
client's HELO (Postfix, Sendmail, Exchange: it then has its own TCP-info address);

=item * our relay's name as the reverse-DNS name in the TCP-info (Postfix/Sendmail
C<(name [ip])>, Exim C<from name ([ip])> with Exim's own marker), only when that relay declares
no address of the IP's family to check it against and the IP is public.

=back

Also understood: C<from NAME [ip]> (iMail, MXLogic), C<from (ip)> without a name (PowerMTA),
C<... id X by NAME> (DragonFly), C<indimail-mta queue N by host NAME>, and hops re-wrapped
without indentation (reflowed NDR text) up to their C<; date>.

A HELO name (C<from HELO (...)>, C<(helo=...)>, C<(HELO ...)>) is never evidence: the client
chose it. Some MTAs copy a HELO with spaces and parentheses into the hop (Postfix joins
C<HELO a b> into C<a b>), so a hop with the signs of such an injection gives no evidence at all:
a second C<by> clause, two comments with an address, or an C<(EHLO ...)> comment followed by an
address that contradicts the C<from> address. A private or loopback address is never evidence by itself (it is an internal hop;
our relay's internal hops still count through their C<by> name). The message's own top-level
header is never searched (it is the bounce's path, not the original's); quoted hops are found
in attached messages (message/rfc822, message/global, at any depth, after base64 or
quoted-printable decoding), in text/rfc822-headers and other text parts, in C<E<gt>>-quoted text,
folded or not.

A C<by> hop of our relay is evidence only where nothing a stranger wrote sits above it: it must
be the newest hop of its header block, or the hop above it (written later) must itself be
evidence, a foreign MTA recording our relay as its client (our address in the TCP-info, or our
relay as the verified reverse-DNS name) or another hop of our relays. A spammer can append any
hop to his own message, but he cannot make the next MTA record him as our relay: a hop
C<by smtp1.out.example.org> below C<from bot (unknown [203.0.113.9]) by mx.foreign.example> is
his text and no evidence.

=head2 The sent-mail ledger

With C<bouncegen_ledger> set, C<bouncegen_ledger_hit()> is true when one of the Message-IDs the
message refers to was recorded by our relays (and has not expired): the C<In-Reply-To:> and
C<References:> of the message, and the C<Message-ID:> of the returned or quoted original (in
attached messages, text/rfc822-headers parts and quoted header blocks of text parts, found by the
same walk as the hops). Entries are keyed hashes (HMAC-SHA256 with the site key, first 16 bytes,
hex) of the normalised ID: the text between the first C<E<lt>> and the next C<E<gt>>, white space
removed, the domain lower-cased; the same format as bouncegen's Python writer
(C<bouncegen.ledger>). The answer is cached per message.

A store that cannot answer (unreachable, slow, locked, key file unreadable) makes the lookup
"unknown": nothing is rescued by the ledger, and C<bouncegen_ledger_unavail()> is true for a
message that had references to look up. bouncegen scores that rule negatively by one verdict, so
that post-queue an outage never turns into a block; its milter turns verdict plus outage into a
temporary failure. An outage is logged at most once a minute per process.

C<bouncegen_reply_msgid()> is true when an C<In-Reply-To:> or C<References:> message-id has
a domain that is exactly one of C<bouncegen_domain> or a relay name (or glob). This is
forgeable (joe-job ratware mints Message-IDs in the forged sender's domain): it is used only
without a ledger, and is always false when C<bouncegen_ledger> is set. A quoted C<Message-ID:>
of the original is never evidence by its domain.

=head2 BATV

With C<bouncegen_batv_keys> set, C<bouncegen_batv_hit()> is true when the first
C<Delivered-To:>, C<X-Original-To:> or C<Envelope-To:> header (the ones the delivery agent
prepends: Postfix local(8)/virtual(8), Exim) holds a valid, unexpired BATV tag of one of the
C<bouncegen_batv_domain>s: C<prvs=KDDDSSSSSS=user@domain>, K a key number of the key file, DDD
the expiry day (days since 1970 modulo 1000) at most C<bouncegen_batv_days> ahead, SSSSSS the
first three bytes (hex) of HMAC-SHA1 keyed with key K's text over C<K>, C<DDD> and the plain
address (domain lower-cased), as Exim's C<${prvs...}> computes it. Only our relays know the keys,
so a valid tag proves that the message answers mail we sent. A key file that cannot be read is
no evidence (logged once a minute).

=cut

package Mail::SpamAssassin::Plugin::BouncegenRescue;

use strict;
use warnings;
use re 'taint';

use Mail::SpamAssassin::Plugin;
use Mail::SpamAssassin::Conf;
use Mail::SpamAssassin::Conf::Parser;
use Mail::SpamAssassin::Logger;
use Digest::SHA ();
use Socket qw(inet_pton AF_INET AF_INET6);
use Mail::SpamAssassin::Plugin::Bouncegen::Common
  qw(admin_setting days_setting range_setting path_setting walk_parts);
use Mail::SpamAssassin::Plugin::Bouncegen::Defaults
  qw(LEDGER_DAYS LEDGER_MAX_DAYS LEDGER_TIMEOUT BATV_DAYS BATV_MAX_DAYS);
use Mail::SpamAssassin::Plugin::BouncegenRescue::Ledger;

# Common's constructor registers EVAL_RULES and the settings below.
our @ISA = qw(Mail::SpamAssassin::Plugin::Bouncegen::Common);
our $VERSION = $Mail::SpamAssassin::Plugin::Bouncegen::Defaults::VERSION;

use constant EVAL_RULES => qw(bouncegen_rescue bouncegen_reply_msgid bouncegen_ledger_hit
                              bouncegen_ledger_unavail bouncegen_batv_hit);
use constant {
  MAX_TEXT => 1024 * 1024,   # bytes of one decoded part that are searched
  MAX_HOP  => 4096,          # characters of one unfolded Received: hop
  MAX_FOLD => 40,            # continuation lines of one hop
  MAX_REFS => 64,            # Message-IDs of one message looked up in the ledger
};

my $LDH_LABEL  = qr/[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?/;
my $GLOB_LABEL = qr/[a-z0-9*?-]{1,63}/;
# What a glob's * and ? may stand for: host-name characters only (as bouncegen's escape.HOST_CHARS).
my $GLOB_CHAR  = '[a-z0-9_.-]';

# Not globally routable: never a relay, never evidence (RFC 6890; documentation ranges are kept,
# examples and tests use them).
my @NON_GLOBAL = map { _parse_cidr($_, 1) } qw(
  0.0.0.0/8 10.0.0.0/8 100.64.0.0/10 127.0.0.0/8 169.254.0.0/16 172.16.0.0/12 192.0.0.0/24
  192.168.0.0/16 198.18.0.0/15 224.0.0.0/3
  ::/127 fc00::/7 fe80::/10 ff00::/8 64:ff9b:1::/48 2001::/23 2002::/16
);

# ---------------------------------------------------------------------------------------------
# Configuration: strict, so that no value can widen a match.

sub settings {
  my @cmds;

=head1 SETTINGS (site configuration only)

Any value other than those described here is refused (a lint error), so that a setting can
never widen a match.

=over

=item bouncegen_relay HOST [ADDRESS[/LEN] ...]

An outbound relay: its host name (or a glob with C<*> and C<?>, the last two labels literal)
and its public addresses or ranges (IPv4 /16 or narrower, IPv6 /32 or narrower). One line a
relay; no relay by default (then C<bouncegen_rescue()> is always false).

=cut

  push(@cmds, admin_setting('bouncegen_relay', $Mail::SpamAssassin::Conf::CONF_TYPE_STRING, [], sub {
    my ($conf, $key, $value, $line) = @_;
    my ($host, @nets) = split(' ', lc($value // ''));
    return $Mail::SpamAssassin::Conf::MISSING_REQUIRED_VALUE unless defined $host;
    my $relay = _parse_host($host, 1) or return $Mail::SpamAssassin::Conf::INVALID_VALUE;
    for my $n (@nets) {
      my $net = _parse_cidr($n) or return $Mail::SpamAssassin::Conf::INVALID_VALUE;
      return $Mail::SpamAssassin::Conf::INVALID_VALUE if _non_global($net->{addr});
      push @{$relay->{nets}}, $net;
    }
    push @{$conf->{$key}}, $relay;
    return;
  }));

=item bouncegen_domain DOMAIN ...

The site's mail domains (ASCII; IDN in its xn-- form).

=cut

  push(@cmds, admin_setting('bouncegen_domain', $Mail::SpamAssassin::Conf::CONF_TYPE_STRINGLIST, {},
                            \&_domains_setting));

=item bouncegen_ledger STORE_URL

The sent-mail ledger: C<sqlite:/absolute/path.db> (read with DBI and DBD::SQLite; the spamd
user needs write access to the database's directory for SQLite's WAL index) or
C<redis://[:password@]host[:port][/db]> (read with SpamAssassin's TinyRedis; the password is
never logged). None by default.

=cut

  push(@cmds, admin_setting('bouncegen_ledger', $Mail::SpamAssassin::Conf::CONF_TYPE_STRING, undef, sub {
    my ($conf, $key, $value, $line) = @_;
    return $Mail::SpamAssassin::Conf::MISSING_REQUIRED_VALUE unless defined $value && $value ne '';
    my $store = Mail::SpamAssassin::Plugin::BouncegenRescue::Ledger::parse_store($value)
      or return $Mail::SpamAssassin::Conf::INVALID_VALUE;
    $conf->{$key} = $store;
    return;
  }));

=item bouncegen_ledger_key /PATH

The site key file (64 hex characters), readable by the spamd user.

=cut

  push(@cmds, admin_setting('bouncegen_ledger_key', $Mail::SpamAssassin::Conf::CONF_TYPE_STRING, undef,
                            \&path_setting));

=item bouncegen_ledger_days N

How many days a recorded Message-ID counts (a whole number, 1 to 365, default 30).

=cut

  push(@cmds, days_setting('bouncegen_ledger_days', LEDGER_DAYS, LEDGER_MAX_DAYS));

=item bouncegen_ledger_timeout SECONDS

How long one lookup may take, connection included (0.1 to 30 seconds, default 2; a time unit
may follow, as in SpamAssassin's own time-outs).

=cut

  push(@cmds, admin_setting('bouncegen_ledger_timeout', $Mail::SpamAssassin::Conf::CONF_TYPE_DURATION,
                            LEDGER_TIMEOUT, range_setting(\&Mail::SpamAssassin::Conf::Parser::set_duration_value, 0.1, 30)));

=item bouncegen_batv_domain DOMAIN ...

The domains whose envelope senders our relays sign with BATV.

=cut

  push(@cmds, admin_setting('bouncegen_batv_domain', $Mail::SpamAssassin::Conf::CONF_TYPE_STRINGLIST, {},
                            \&_domains_setting));

=item bouncegen_batv_keys /PATH

The BATV key file (C<bouncegen batv init>): one C<K HEX> line a key; readable by the spamd user.
None by default (then C<bouncegen_batv_hit()> is always false).

=cut

  push(@cmds, admin_setting('bouncegen_batv_keys', $Mail::SpamAssassin::Conf::CONF_TYPE_STRING, undef,
                            \&path_setting));

=item bouncegen_batv_days N

How many days a tag is valid (a whole number, 1 to 30, default 7).

=cut

  push(@cmds, days_setting('bouncegen_batv_days', BATV_DAYS, BATV_MAX_DAYS));

=back

=cut

  return @cmds;
}

# The code of a list of domains: each a host name, kept as a set (lower-case, no trailing dot).
sub _domains_setting {
  my ($conf, $key, $value, $line) = @_;
  my @domains = split(' ', lc($value // ''));
  return $Mail::SpamAssassin::Conf::MISSING_REQUIRED_VALUE unless @domains;
  for my $d (@domains) {
    my $h = _parse_host($d, 0) or return $Mail::SpamAssassin::Conf::INVALID_VALUE;
    $conf->{$key}->{$h->{name}} = 1;
  }
  return;
}

# A host name, or (glob allowed) a VBounce-style glob whose last two labels are literal.
sub _parse_host {
  my ($value, $glob_ok) = @_;
  my $name = $value;
  $name =~ s/\.\z//;
  return if length($name) > 253;
  my @labels = split(/\./, $name, -1);
  return if @labels < 2;
  my $wild = 0;
  for my $i (0 .. $#labels) {
    my $l = $labels[$i];
    if ($l =~ /[*?]/) {
      return unless $glob_ok && $i < @labels - 2 && $l =~ /\A$GLOB_LABEL\z/;
      $wild = 1;
    } else {
      return unless $l =~ /\A$LDH_LABEL\z/;
    }
  }
  my $re;
  if ($wild) {
    my $src = join('', map { $_ eq '*' ? "$GLOB_CHAR*" : $_ eq '?' ? $GLOB_CHAR : quotemeta($_) }
                       split(//, $name));
    $re = qr/\A$src\z/;
  }
  return { name => $name, re => $re, nets => [] };
}

# "ADDRESS" or "ADDRESS/LEN"; with $any_len the /16 (IPv4) and /32 (IPv6) floor is not applied.
sub _parse_cidr {
  my ($value, $any_len) = @_;
  my ($addr, $len) = $value =~ m{\A([0-9a-f:.]+)(?:/([0-9]{1,3}))?\z}i or return;
  my $packed = _pack_ip($addr, 1) // return;
  my $bits = 8 * length($packed);
  $len //= $bits;
  return if $len > $bits || (!$any_len && $len < ($bits == 32 ? 16 : 32));
  my $mask = pack("B$bits", ('1' x $len) . ('0' x ($bits - $len)));
  return if ($packed & $mask) ne $packed;    # host bits set
  return { addr => $packed, mask => $mask, len => $len };
}

# An address as 4 (IPv4) or 16 (IPv6) bytes, or undef if it is not exactly an address.
# IPv4-mapped IPv6 (::ffff:192.0.2.25) is returned as the IPv4 address, unless $keep_mapped.
sub _pack_ip {
  my ($s, $keep_mapped) = @_;
  return unless defined $s;
  $s =~ s/\AIPv6://i;
  if ($s =~ /:/) {
    return unless $s =~ /\A[0-9a-f:.]{2,45}\z/i;
    my $p = inet_pton(AF_INET6, $s);
    return unless defined $p && length($p) == 16;
    return substr($p, 12) if !$keep_mapped && substr($p, 0, 12) eq ("\0" x 10) . "\xff\xff";
    return $p;
  }
  return unless $s =~ /\A[0-9]{1,3}(?:\.[0-9]{1,3}){3}\z/;
  my $p = inet_pton(AF_INET, $s);
  return (defined $p && length($p) == 4) ? $p : undef;
}

sub _in_net {
  my ($packed, $net) = @_;
  return length($packed) == length($net->{addr}) && ($packed & $net->{mask}) eq $net->{addr};
}

sub _non_global {
  my ($packed) = @_;
  for my $n (@NON_GLOBAL) { return 1 if _in_net($packed, $n) }
  return 0;
}

sub _show_ip {
  my ($p) = @_;
  return length($p) == 4 ? join('.', unpack('C4', $p)) : join(':', unpack('(H4)8', $p));
}

# ---------------------------------------------------------------------------------------------
# Matching names and addresses against the configuration.

sub _relay_named {
  my ($conf, $name) = @_;
  return unless defined $name;
  $name = lc($name);
  $name =~ s/\.\z//;
  return unless $name =~ /\A[a-z0-9_.-]+\z/;
  for my $r (@{$conf->{bouncegen_relay}}) {
    return $r if $r->{re} ? $name =~ $r->{re} : $name eq $r->{name};
  }
  return;
}

sub _our_address {
  my ($conf, $packed) = @_;
  return 0 unless defined $packed;
  for my $r (@{$conf->{bouncegen_relay}}) {
    for my $n (@{$r->{nets}}) { return 1 if _in_net($packed, $n) }
  }
  return 0;
}

# ---------------------------------------------------------------------------------------------
# Parsing one quoted hop (the unfolded text after "Received:").


my $HOP_RE = qr{
  \A\s*
  (?:(?&cm)\s*)*                                      # (from user@localhost), (qmail 1 invoked...)
  (?:indimail-mta\s+queue\s+[0-9]+\s+(?=by\s+host\s))?  # indimail: "queue N by host NAME"
  (?:from\s+(?:(?<from>[^\s()\[\]]+|\[[^\s()\[\]]*\])\s*)?  # the token is optional: "from (127.0.0.1)"
     (?:\[(?<fip>[0-9A-Fa-f:.]+)\]\s*)?                 # iMail, MXLogic: "from NAME [ip]"
     (?<fc>(?:(?&cm)\s*)*)
     (?:(?:id|with)\s+[^\s()]+\s*(?:(?&cm)\s*)*)*     # DragonFly: "... id e06d1 by NAME"
  )?
  (?:by\s+(?:host\s+)?(?<by>[^\s;()]+?)\.?(?=[\s;(]|\z)\s*(?<bc>(?:(?&cm)\s*)*))?
  (?<rest>.*)\z
  (?(DEFINE)(?<cm>\((?:[^()]++|(?&cm))*+\)))
}xsi;

my $IP_CHARS = qr/[0-9A-Fa-f:.]+/;

# The top-level comments of a run of comments, without their outer parentheses.
sub _comments {
  my ($run) = @_;
  my @out;
  while (defined $run && $run =~ /\G\s*(\((?:[^()]++|(?1))*+\))/gc) {
    push @out, substr($1, 1, -1);
  }
  return @out;
}

# Addresses the receiving MTA wrote in a TCP-info comment: "[ip]", "[IPv6:ip]", "[ip]:port" as a
# whole word (so never helo=[ip] or user@[ip]), or the whole comment "ip" / "ident@ip".
sub _comment_addresses {
  my ($c) = @_;
  return () if $c =~ /\A\s*(?:HELO|EHLO|envelope-from)\b/i;    # the client's words
  my @ips;
  if ($c =~ /\A\s*(?:[^\s\@()]*\@)?(?:IPv6:)?($IP_CHARS)\s*\z/i) {
    push @ips, $1;
  }
  while ($c =~ /(?:\A|(?<=[\s(]))\[(?:IPv6:)?($IP_CHARS)\](?::[0-9]{1,5})?(?=[\s)]|\z)/gi) {
    push @ips, $1;
  }
  return grep { defined } map { _pack_ip($_) } @ips;
}

# Evidence in one hop: a short description, or undef.
#
# Only what the receiving MTA wrote counts. A client can put almost anything in its HELO, and
# some MTAs copy it with spaces and parentheses (Postfix joins "HELO a b" into "a b"), so a hop
# that shows the signs of such an injection (a second "by" clause, two address comments, a
# from-address that contradicts the TCP-info) gives no evidence at all.
sub _hop_evidence {
  my ($conf, $hop) = @_;
  $hop =~ s/\s+/ /g;
  return unless $hop =~ $HOP_RE;
  my %m = %+;
  my ($from, $by) = ($m{from}, $m{by});
  return if defined $by && $m{rest} =~ /\A\s*by\s/i;    # two "by" clauses: one is forged

  # 1. Written by our relay: "by NAME" or "by ADDRESS".
  if (defined $by) {
    my $r = _relay_named($conf, $by);
    return "by $r->{name}" if $r;
    (my $lit = $by) =~ s/\A\[(.*)\]\z/$1/;
    my $p = _pack_ip($lit);
    return 'by ' . _show_ip($p) if $p && _our_address($conf, $p);
    for my $c (_comments($m{bc})) {
      for my $p (_comment_addresses($c)) {
        return 'by-comment ' . _show_ip($p) if _our_address($conf, $p);
      }
    }
  }
  return unless defined $m{fc} || defined $from || defined $m{fip};

  # 2. Received from our address, as the receiving MTA recorded it: the one comment with an
  # address (TCP-info), else "NAME [ip]" (iMail), else the from token when the greeting is in a
  # comment of its own (Exim "[ip] (helo=...)", Yahoo "ip (EHLO ...)").
  my @fc = _comments($m{fc});
  my @with_ip = grep { my @a = _comment_addresses($_); @a } @fc;
  return if @with_ip > 1;
  my @tcp = @with_ip ? _comment_addresses($with_ip[0]) : ();
  my $from_ip;
  if (defined $from) {
    (my $lit = $from) =~ s/\A\[(.*)\](?::[0-9]{1,5})?\z/$1/;
    $from_ip = _pack_ip($lit);
  }
  # (grep's list runs to the end of the expression: each grep needs its own parentheses.)
  if ($from_ip && @tcp && !(grep { $_ eq $from_ip } @tcp)
      && (grep { /\A\s*(?:HELO|EHLO)\b/i } @fc)) {
    return;    # "from IP (EHLO x) (other IP)": the second address came with the greeting
  }
  if (!@tcp && defined $m{fip}) {
    my $p = _pack_ip($m{fip});
    @tcp = ($p) if $p;
  }
  for my $p (@tcp) {
    return 'from ' . _show_ip($p) if _our_address($conf, $p);
  }
  if (!@tcp && $from_ip && grep { /\A\s*(?:HELO|EHLO)\b/i || /(?:\A|\s)(?:helo|port)=/i } @fc) {
    return 'from ' . _show_ip($from_ip) if _our_address($conf, $from_ip);
  }

  # 3. Our relay as the verified reverse-DNS name, when the relay has no address to check.
  my ($rdns, $ip);
  my $tcpinfo = $with_ip[0];
  if (defined $tcpinfo && $tcpinfo =~ /\A\s*(?:[^\s\@()\[\]]+\@)?([A-Za-z0-9._-]+?)\.?\s+\[(?:IPv6:)?($IP_CHARS)\]/i) {
    ($rdns, $ip) = ($1, $2);                       # Postfix, Sendmail, Gmail: HELO (rdns [ip])
  } elsif (defined $tcpinfo && $tcpinfo =~ /\A\s*\[(?:IPv6:)?($IP_CHARS)\](:[0-9]{1,5}\b)?/i && defined $from
           && !$from_ip && $from !~ /\A\[/ && (defined $2 || _exim($m{rest}))) {
    ($rdns, $ip) = ($from, $1);                    # Exim: rdns ([ip]:port helo=...)
  }
  if (defined $rdns && lc($rdns) ne 'unknown') {
    my $r = _relay_named($conf, $rdns);
    my $p = _pack_ip($ip);
    if ($r && $p && !_non_global($p) && !grep { length($_->{addr}) == length($p) } @{$r->{nets}}) {
      return "from rdns $r->{name}";
    }
  }
  return;
}

# Exim's signature in the "with" clause, read only up to the first part a client can choose
# (envelope-from, id, for).
sub _exim {
  my ($rest) = @_;
  return 0 unless defined $rest;
  my ($with) = $rest =~ /\A(.*?)(?:\(envelope-from|\bid\b|\bfor\b|;|\z)/si;
  return defined $with && $with =~ /\(Exim [0-9][0-9a-z._-]*\)/i;
}

# ---------------------------------------------------------------------------------------------
# Finding quoted hops in a text: "Received:" lines, quoted with "> " or not, with their folded
# continuation lines (same quote depth, indented deeper than the Received: line).

sub _hops {
  my ($text) = @_;
  return () unless defined $text && $text =~ /Received[ \t]*:/i;
  $text =~ s/\r\n?/\n/g;
  my @lines = split(/\n/, $text);
  my @hops;
  my $block = 0;    # a blank line ends a header block
  for (my $i = 0; $i < @lines; $i++) {
    if ($lines[$i] !~ /\A((?:[ \t]*>)*)([ \t]*)Received[ \t]*:(.*)\z/i) {
      $block++ if $lines[$i] =~ /\A(?:[ \t]*>)*[ \t]*\z/;
      next;
    }
    my ($depth, $indent, $hop) = (($1 =~ tr/>//), length($2), $3);
    my $folds = 0;
    while ($i + 1 < @lines && $folds < MAX_FOLD) {
      last unless $lines[$i + 1] =~ /\A((?:[ \t]*>)*)([ \t]*)(\S.*)\z/;
      my ($d2, $ws, $more) = (($1 =~ tr/>//), $2, $3);
      # A folded line is indented deeper; text that was re-wrapped without indentation (HTML
      # and reflowed text parts) still continues the hop until its "; date", unless the line
      # looks like the next header field.
      last unless $d2 == $depth
        && (length($ws) > $indent || $ws =~ /\t/
            || ($hop !~ /;/ && $more !~ /\A[A-Za-z0-9-]+:/));
      $hop .= " $more";
      $i++;
      $folds++;
    }
    push @hops, [substr($hop, 0, MAX_HOP), $block];
  }
  return @hops;
}

# The texts in which quoted hops are looked for: the header of every attached message (not the
# message's own header), and the decoded content of every text and message part.
sub _texts {
  my ($pms) = @_;
  return @{$pms->{bouncegen_texts}} if $pms->{bouncegen_texts};
  my @texts;
  walk_parts($pms, sub {
    my ($node, $top) = @_;
    if (!$top && $node->isa('Mail::SpamAssassin::Message')) {
      push @texts, $node->{pristine_headers} if defined $node->{pristine_headers};
    }
    return unless $node->is_leaf;
    my $type = lc($node->{type} // '');
    return unless $type =~ m{\A(?:text|message)/} || $type eq 'application/octet-stream';
    my $text = eval { $node->decode(MAX_TEXT) };
    push @texts, $text if defined $text && $text ne '';
    if ($type eq 'text/html') {
      my (undef, $rendered) = eval { $node->rendered };
      push @texts, $rendered if defined $rendered && $rendered ne '';
    }
  });
  $pms->{bouncegen_texts} = \@texts;
  return @texts;
}

# ---------------------------------------------------------------------------------------------
# Eval rules.

# Evidence is read top-down through each header block (newest hop first). A hop in which a
# foreign MTA recorded our relay as its client ("from" evidence) counts. A hop our relay wrote
# ("by" evidence) counts only at the top of its block (directly below a hop that counts it would
# add nothing): below a hop whose client was somebody else, it is text that somebody else wrote.
sub _rescued {
  my ($conf, $pms) = @_;
  return 0 unless @{$conf->{bouncegen_relay}};
  for my $text (_texts($pms)) {
    my $block = -1;
    for my $item (_hops($text)) {
      my ($hop, $b) = @$item;
      my $top = $b != $block;
      $block = $b;
      my $why = _hop_evidence($conf, $hop);
      my $counts = $why && ($why =~ /\Afrom / || $top);
      if ($counts) {
        dbg("bouncegen: rescue: quoted hop $why");
        return 1;
      }
      dbg("bouncegen: rescue: no evidence: $why below a hop somebody else wrote") if $why;
    }
  }
  return 0;
}

sub bouncegen_rescue {
  my ($self, $pms) = @_;
  return $pms->{bouncegen_rescue} //= _rescued($pms->{conf}, $pms);
}

sub bouncegen_reply_msgid {
  my ($self, $pms) = @_;
  my $conf = $pms->{conf};
  return 0 if $conf->{bouncegen_ledger};    # with a ledger, a domain is no evidence
  for my $h ('In-Reply-To', 'References') {
    my $value = $pms->get($h) // next;
    while ($value =~ /<([^<>\s]+)>/g) {
      my ($domain) = $1 =~ /\@([a-z0-9.-]+)\z/i or next;
      $domain = lc($domain);
      $domain =~ s/\.\z//;
      if ($conf->{bouncegen_domain}->{$domain} || _relay_named($conf, $domain)) {
        dbg("bouncegen: rescue: $h names $domain");
        return 1;
      }
    }
  }
  return 0;
}


# ---------------------------------------------------------------------------------------------
# The sent-mail ledger (its client: BouncegenRescue::Ledger; the format: bouncegen.ledger).

sub bouncegen_ledger_hit {
  my ($self, $pms) = @_;
  return $self->_ledger($pms)->{hit};
}

sub bouncegen_ledger_unavail {
  my ($self, $pms) = @_;
  return $self->_ledger($pms)->{unavail};
}


# The header fields that name the Message-ID of a returned, attached or quoted original:
# Message-ID: itself; X-Original-Message-ID:, where a gateway that replaced the ID kept the one
# our relay sent; Original-Message-ID:, an MDN's or feedback report's field (RFC 8098, RFC 5965).
my $REF_FIELD = qr/(?:X-Original-|Original-)?Message-ID/i;

# Raw values of those fields in the MIME headers of every part below the top level (the
# message's own header is the bounce's, not the original's). An MTA that writes no empty line
# between "Content-Type: message/rfc822" (or text/rfc822-headers) and the returned header makes
# the parser read the original's header as the part's own MIME header: its Message-ID is there.
sub _part_header_ids {
  my ($pms) = @_;
  my @values;
  walk_parts($pms, sub {
    my ($node, $top) = @_;
    return if $top;
    for my $name (sort keys %{$node->{raw_headers} || {}}) {
      next unless $name =~ /\A$REF_FIELD\z/;
      push @values, $node->raw_header($name);
    }
  });
  return @values;
}

# The Message-IDs a message refers to: its In-Reply-To: and References:, and the Message-ID: of
# every returned, attached or quoted original (header blocks found by the walk of _texts, and
# MIME part headers that hold the original's header), at most MAX_REFS. Any number of these
# may be text the sender wrote; only an ID that our relays recorded is a hit.
sub _references {
  my ($pms) = @_;
  my (@ids, %seen);
  my $add = sub {
    my $id = Mail::SpamAssassin::Plugin::BouncegenRescue::Ledger::normalise($_[0]);
    push @ids, $id if defined $id && !$seen{$id}++ && @ids < MAX_REFS;
  };
  for my $h ('In-Reply-To', 'References') {
    my $value = $pms->get($h) // next;
    my @bracketed = $value =~ /(<[^<>]*>)/g;
    if (@bracketed) { $add->($_) for @bracketed } else { $add->($value) }
  }
  for my $text (_texts($pms)) {
    next unless $text =~ /Message-ID/i;
    (my $t = $text) =~ s/\r\n?/\n/g;
    while ($t =~ /^(?:[ \t]*>)*[ \t]*$REF_FIELD[ \t]*:([^\n]*(?:\n(?:[ \t]*>)*[ \t]+[^\n]*)?)/mg) {
      (my $v = $1) =~ s/\n(?:[ \t]*>)*/ /g;
      $add->($v);
    }
    last if @ids >= MAX_REFS;
  }
  $add->($_) for _part_header_ids($pms);
  return @ids;
}


# { hit => 0|1, unavail => 0|1 } for this message, looked up once.
sub _ledger {
  my ($self, $pms) = @_;
  return $pms->{bouncegen_ledger} if $pms->{bouncegen_ledger};
  my $res = $pms->{bouncegen_ledger} = { hit => 0, unavail => 0 };
  my $conf = $pms->{conf};
  my $store = $conf->{bouncegen_ledger} or return $res;
  my @ids = _references($pms);
  return $res unless @ids;
  $self->{bouncegen_ledger_client} //= Mail::SpamAssassin::Plugin::BouncegenRescue::Ledger->new;
  my ($found, $err) = $self->{bouncegen_ledger_client}->lookup(
    store => $store, key_file => $conf->{bouncegen_ledger_key}, ids => \@ids,
    days => $conf->{bouncegen_ledger_days}, secs => $conf->{bouncegen_ledger_timeout});
  if (defined $found) {
    $res->{hit} = $found ? 1 : 0;
    dbg("bouncegen: ledger: " . scalar(@ids) . " referenced message-id(s), " . ($found ? 'recorded' : 'none recorded'));
  } else {
    $res->{unavail} = 1;
    $self->warn_limited('ledger', "ledger $store->{shown} unavailable: $err",
                        '(no rescue from the ledger; BG_LEDGER_UNAVAIL; logged once a minute)');
  }
  return $res;
}

# ---------------------------------------------------------------------------------------------
# BATV (bouncegen.batv, docs/batv.md): a valid prvs= tag on the recipient the MTA recorded.

# {K => secret text} from the key file, re-read when it changes (bouncegen batv rotate).
sub _batv_keys {
  my ($self, $path) = @_;
  my @st = stat($path) or die "cannot read the BATV key file $path: $!\n";
  my $stamp = join(':', @st[1, 7, 9]);
  my $cached = $self->{bouncegen_batv}{$path};
  return $cached->{keys} if $cached && $cached->{stamp} eq $stamp;
  open(my $fh, '<', $path) or die "cannot read the BATV key file $path: $!\n";
  my %keys;
  while (my $line = <$fh>) {
    $line =~ s/\A\s+|\s+\z//g;
    next if $line eq '' || $line =~ /\A#/;
    $line =~ /\A([0-9])\s+([0-9a-f]{64})\z/ or die "the BATV key file $path has a line that is not 'K HEX'\n";
    $keys{$1} = $2;
  }
  close($fh);
  die "no key in the BATV key file $path\n" unless %keys;
  $self->{bouncegen_batv}{$path} = { stamp => $stamp, keys => \%keys };
  return \%keys;
}

# Is ADDRESS a valid, unexpired tag of one of DOMAINS under KEYS? (bouncegen.batv.check)
sub _batv_valid {
  my ($keys, $domains, $days, $address, $now) = @_;
  $address =~ s/\A\s*<?|>?\s*\z//g;
  my ($k, $ddd, $mac, $local, $domain) =
    $address =~ /\Aprvs=([0-9])([0-9]{3})([0-9a-f]{6})=(.+)\@([^\@]+)\z/i or return 0;
  $domain = lc($domain);
  return 0 unless $domains->{$domain};
  my $ahead = ($ddd - int(($now // time) / 86400)) % 1000;    # Perl's % is non-negative here
  return 0 if $ahead > $days;
  my $secret = $keys->{$k} // return 0;
  my $want = substr(Digest::SHA::hmac_sha1_hex("$k$ddd$local\@$domain", $secret), 0, 6);
  return lc($mac) eq $want ? 1 : 0;
}

sub bouncegen_batv_hit {
  my ($self, $pms) = @_;
  return $pms->{bouncegen_batv_hit} if defined $pms->{bouncegen_batv_hit};
  my $conf = $pms->{conf};
  my $path = $conf->{bouncegen_batv_keys} or return $pms->{bouncegen_batv_hit} = 0;
  # The first of each header a delivery agent prepends; only tagged ones need the keys (so that
  # a message without a tag, spamassassin --lint's too, never reads the key file).
  my @tagged;
  for my $name (qw(Delivered-To X-Original-To Envelope-To)) {
    my @values = $pms->get_message->get_header($name);
    push @tagged, [$name, $values[0]] if @values && $values[0] =~ /\A\s*<?prvs=/i;
  }
  return $pms->{bouncegen_batv_hit} = 0 unless @tagged;
  my $keys = eval { $self->_batv_keys($path) };
  if (!$keys) {
    (my $why = $@) =~ s/\s+\z//;
    $self->warn_limited('batv', "batv: $why", '(no rescue from BATV; logged once a minute)');
    return $pms->{bouncegen_batv_hit} = 0;
  }
  for my $t (@tagged) {
    if (_batv_valid($keys, $conf->{bouncegen_batv_domain}, $conf->{bouncegen_batv_days}, $t->[1])) {
      dbg("bouncegen: batv: valid tag in $t->[0]: $t->[1]");
      return $pms->{bouncegen_batv_hit} = 1;
    }
  }
  return $pms->{bouncegen_batv_hit} = 0;
}

1;
