#
# Mail::SpamAssassin::Plugin::BouncegenDKIM - our own DKIM signature in a returned original.
#
# Shipped with bouncegen (sa_plugin/Mail/SpamAssassin/Plugin/BouncegenDKIM.pm, the path of its
# package) and rendered beside the .cf as BouncegenDKIM.pm when the inventory has a [dkim] table;
# loaded by the rendered 72_bouncegen.pre.

=head1 NAME

Mail::SpamAssassin::Plugin::BouncegenDKIM - does a bounce return a message that we signed?

=head1 SYNOPSIS

  loadplugin Mail::SpamAssassin::Plugin::BouncegenDKIM BouncegenDKIM.pm

  ifplugin Mail::SpamAssassin::Plugin::BouncegenDKIM
    bouncegen_dkim_key          example.org mail2026 MIIBIjANBgkqhkiG9w0BAQEFAAOC...
    bouncegen_dkim_max_age_days 30
    body __BG_DKIM_OURS eval:bouncegen_dkim_ours()
  endif

=head1 DESCRIPTION

Most sites sign what their relays send (OpenDKIM). A bounce that returns the original with a
C<DKIM-Signature:> of one of our domains that verifies against our own public key answers mail
that we sent: a spammer cannot write that signature without our private key. The verification
is Mail::DKIM's (the implementation SpamAssassin's own DKIM plugin uses), fully offline: the
public keys come from this configuration through a resolver object handed to Mail::DKIM
(C<$Mail::DKIM::DNS::RESOLVER>, localised to our call, so SpamAssassin's DKIM plugin in the same
process keeps its own resolver). A signature whose C<d=>/C<s=> is not configured here finds no
key (the resolver answers NXDOMAIN without asking anybody) and is no evidence; no DNS query is
ever sent.

Where the original is looked for: attached messages (message/rfc822, message/global, at any
depth), text/rfc822-headers parts, and header blocks quoted inline in a text part (C<E<gt>>-quoted
or not, as qmail and many MTAs return them). An inline block is passed as a header without a body.

The returned header's signature counts when all of these hold:

=over

=item * Mail::DKIM verifies the header hash (the signed header fields, and the C<DKIM-Signature>
itself with its C<bh=>, C<t=> and C<x=>) against our configured key;

=item * the body hash matches, or no body was returned (a text/rfc822-headers part, an attached
message with an empty body, an inline header block). The C<bh=> value is covered by the header
signature, so skipping the body-hash comparison for a missing body does not let anybody make a
new signature: only a header block that our signer produced verifies. (A full original whose
body does not match its C<bh=> is no evidence: it is our header on somebody else's body.)

=item * it is C<rsa-sha256> (Mail::DKIM's C<Strict> mode, RFC 8301: C<rsa-sha1> is refused);

=item * it has not expired (C<x=>, checked by Mail::DKIM), it carries a C<t=> that is not in the
future (five minutes of clock skew allowed) and not older than C<bouncegen_dkim_max_age_days>.

=back

What it cannot prove: a signature is a property of the message, not of the envelope. A spammer
who holds a message we signed (a list archive, a mail to him) can replay its header, unchanged,
within the signature's lifetime; keep C<x=> (OpenDKIM's C<SignatureTTL>) and the maximum age short.

=cut

package Mail::SpamAssassin::Plugin::BouncegenDKIM;

use strict;
use warnings;
use re 'taint';

use Mail::SpamAssassin::Plugin;
use Mail::SpamAssassin::Conf;
use Mail::SpamAssassin::Logger;
use Mail::SpamAssassin::Util;
use Mail::DKIM::Verifier;
use Mail::DKIM::PublicKey;
use Net::DNS;
use Mail::SpamAssassin::Plugin::Bouncegen::Common qw(admin_setting days_setting walk_parts);
use Mail::SpamAssassin::Plugin::Bouncegen::Defaults qw(DKIM_MAX_AGE_DAYS DKIM_MAX_MAX_AGE_DAYS);

# Common's constructor registers EVAL_RULES and the settings below.
our @ISA = qw(Mail::SpamAssassin::Plugin::Bouncegen::Common);
our $VERSION = $Mail::SpamAssassin::Plugin::Bouncegen::Defaults::VERSION;

use constant EVAL_RULES => qw(bouncegen_dkim_ours);
use constant {
  MAX_ORIGINALS => 8,              # returned originals of one message that are verified
  MAX_ORIGINAL  => 1024 * 1024,    # bytes of one returned original that are verified
  MAX_SIGS      => 8,              # DKIM-Signature fields of one original (each one hashes the body)
  CLOCK_SKEW    => 300,            # seconds a t= may lie in the future
};

my $LABEL = qr/[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?/;

sub settings {
  my @cmds;

=head1 SETTINGS (site configuration only)

=over

=item bouncegen_dkim_max_age_days N

How many days after its C<t=> a signature counts (a whole number, 1 to 365, default 30).

=cut

  push(@cmds, days_setting('bouncegen_dkim_max_age_days', DKIM_MAX_AGE_DAYS, DKIM_MAX_MAX_AGE_DAYS));

=item bouncegen_dkim_key DOMAIN SELECTOR PUBLIC_KEY

One of our signing keys: the domain (C<d=>), the selector (C<s=>) and the RSA public key as the
DNS record's C<p=> (base64 of the DER SubjectPublicKeyInfo). Checked by Mail::DKIM when the
configuration is read: a key it cannot load is a lint error. One line a key; none by default
(then C<bouncegen_dkim_ours()> is always false).

=cut

  push(@cmds, admin_setting('bouncegen_dkim_key', $Mail::SpamAssassin::Conf::CONF_TYPE_STRING, {}, sub {
    my ($conf, $key, $value, $line) = @_;
    my @w = split(' ', $value // '');
    return $Mail::SpamAssassin::Conf::MISSING_REQUIRED_VALUE unless @w;
    return $Mail::SpamAssassin::Conf::INVALID_VALUE unless @w == 3;
    my ($domain, $selector, $p) = (lc $w[0], lc $w[1], $w[2]);
    return $Mail::SpamAssassin::Conf::INVALID_VALUE
      unless $domain =~ /\A$LABEL(?:\.$LABEL)+\z/ && $selector =~ /\A$LABEL(?:\.$LABEL)*\z/
             && $p =~ m{\A[A-Za-z0-9+/]+={0,2}\z};
    my $record = "v=DKIM1; k=rsa; p=$p";
    # Mail::DKIM loads the key now (Crypt::OpenSSL::RSA), so that a broken key is a lint
    # error rather than a rescue that never fires.
    my $ok = eval {
      my $pk = Mail::DKIM::PublicKey->parse($record);
      $pk->check;
      $pk->cork or die "cannot load the key\n";
      1;
    };
    return $Mail::SpamAssassin::Conf::INVALID_VALUE unless $ok;
    $conf->{$key}->{"$selector._domainkey.$domain"} = Mail::SpamAssassin::Util::untaint_var($record);    # checked above
    return;
  }));

=back

=cut

  return @cmds;
}

# ---------------------------------------------------------------------------------------------
# The returned originals: [text, has_body] for each attached message, text/rfc822-headers part
# and inline-quoted header block that carries a DKIM-Signature of a configured domain.

sub _originals {
  my ($pms) = @_;
  my $conf = $pms->{conf};
  my %domains = map { (/\._domainkey\.(.+)\z/)[0] => 1 } keys %{$conf->{bouncegen_dkim_key}};
  # Whether a header text holds a signature of one of our domains; an original with more than
  # MAX_SIGS signatures is not verified at all (Mail::DKIM would hash the body once for each).
  my $ours = sub {
    my ($text) = @_;
    my ($n, $found) = (0, 0);
    while ($text =~ /^(?:[ \t]*>)*[ \t]*DKIM-Signature[ \t]*:((?:[^\n]*\n[ \t>]*[ \t])*[^\n]*)/mgi) {
      if (++$n > MAX_SIGS) {
        dbg("bouncegen: dkim: more than " . MAX_SIGS . " DKIM-Signature fields in one original: not verified");
        return 0;
      }
      my ($d) = $1 =~ /(?:\A|;)\s*d\s*=\s*([A-Za-z0-9._-]+)/;
      $found = 1 if defined $d && $domains{lc $d};
    }
    return $found;
  };
  my @found;
  walk_parts($pms, sub {
    my ($node, $top) = @_;
    if (!$top && $node->isa('Mail::SpamAssassin::Message')) {
      # An attached message, parsed by SpamAssassin into its own tree: its text as returned.
      my $head = $node->{pristine_headers} // '';
      my $body = $node->{pristine_body} // '';
      (my $h = $head) =~ s/\r\n?/\n/g;
      push @found, [$head . $body, ($body =~ /\S/ ? 1 : 0)] if $ours->($h);
    } elsif ($node->is_leaf) {
      my $ct = lc($node->get_header('content-type') // $node->{type} // '');
      return unless $ct =~ m{\A\s*(?:text|message)/};
      my $text = eval { $node->decode(MAX_ORIGINAL) };
      return unless defined $text && $text =~ /DKIM-Signature/i;
      $text =~ s/\r\n?/\n/g;
      if ($ct =~ m{\A\s*text/rfc822-headers\b}) {
        push @found, [$text, 0] if $ours->($text);
      } else {
        push @found, map { [$_, 0] } grep { $ours->($_) } _inline_blocks($text);
      }
    }
  });
  splice(@found, MAX_ORIGINALS) if @found > MAX_ORIGINALS;
  return @found;
}

# Header blocks quoted in a text part around each "DKIM-Signature:" line: the lines above and
# below it at the same quote depth that are header fields or their continuations, up to an
# empty line or a line that is neither; the quote prefix removed.
sub _inline_blocks {
  my ($text) = @_;
  my @lines = split(/\n/, $text);
  my (@blocks, %done);
  for my $i (0 .. $#lines) {
    next if $done{$i};
    next unless $lines[$i] =~ /\A((?:[ \t]*>)*)[ \t]*DKIM-Signature[ \t]*:/i;
    my $depth = ($1 =~ tr/>//);
    my $strip = sub {
      my ($line) = @_;
      return unless $line =~ /\A((?:[ \t]*>)*)(.*)\z/ && ($1 =~ tr/>//) == $depth;
      my $rest = $2;
      $rest =~ s/\A // if $depth;    # the space after "> "
      return $rest;
    };
    my $is_field = sub { my ($l) = @_; defined $l && ($l =~ /\A[!-9;-~]+[ \t]*:/ || $l =~ /\A[ \t]+\S/) };
    my ($from, $to) = ($i, $i);
    $from-- while $from > 0 && $is_field->($strip->($lines[$from - 1]));
    $from++ while $from < $i && $strip->($lines[$from]) !~ /\A[!-9;-~]+[ \t]*:/;    # no leading continuation
    $to++ while $to < $#lines && $is_field->($strip->($lines[$to + 1]));
    $done{$_} = 1 for $from .. $to;
    push @blocks, join('', map { $strip->($_) . "\n" } @lines[$from .. $to]);
  }
  return @blocks;
}

# ---------------------------------------------------------------------------------------------
# Verification with Mail::DKIM against our keys.

sub bouncegen_dkim_ours {
  my ($self, $pms) = @_;
  return $pms->{bouncegen_dkim_ours} //= _ours($pms->{conf}, $pms);
}

sub _ours {
  my ($conf, $pms) = @_;
  return 0 unless %{$conf->{bouncegen_dkim_key}};
  my $resolver = Mail::SpamAssassin::Plugin::BouncegenDKIM::Keys->new($conf->{bouncegen_dkim_key});
  for my $orig (_originals($pms)) {
    my $why = eval { _verify($conf, $resolver, @$orig) };
    if ($@) {
      dbg("bouncegen: dkim: verification failed: $@");
    } elsif ($why) {
      dbg("bouncegen: dkim: our signature in the returned original: $why");
      return 1;
    }
  }
  return 0;
}

# A string saying why the original carries a valid signature of ours, or undef.
sub _verify {
  my ($conf, $resolver, $text, $has_body) = @_;
  # Mail::DKIM reads CRLF lines; a header block without a body ends with the empty line (a
  # returned header block may or may not end with a line break before the MIME boundary).
  $text =~ s/\r?\n/\015\012/g;
  if (!$has_body) {
    $text =~ s/(?:\015\012)+\z//;
    $text .= "\015\012\015\012";
  }
  # Strict: RFC 8301, no rsa-sha1 and no key below 1024 bits (a SHA-1 signature could be reused
  # for a colliding header).
  my $dkim = Mail::DKIM::Verifier->new(Strict => 1);
  {
    local $Mail::DKIM::DNS::RESOLVER = $resolver;    # our keys; nothing is asked of the DNS
    $dkim->PRINT($text);
    $dkim->CLOSE;
  }
  my $max_age = 86400 * $conf->{bouncegen_dkim_max_age_days};
  my $now = time;
  for my $sig ($dkim->signatures) {
    my ($d, $s) = (lc($sig->domain // ''), lc($sig->selector // ''));
    next unless $conf->{bouncegen_dkim_key}->{"$s._domainkey.$d"};
    my $result = $sig->result // '';
    my $detail = $sig->result_detail // $result;
    # Without a body, the header hash (which covers bh=) is what proves the signature: Mail::DKIM
    # checks it first and reports a body-hash mismatch only for a header that verified.
    my $header_ok = $result eq 'pass' || (!$has_body && $result eq 'fail' && $detail =~ /body has been altered/);
    if (!$header_ok) {
      dbg("bouncegen: dkim: d=$d s=$s: $detail");
      next;
    }
    my $t = $sig->timestamp;
    if (!defined $t || $t !~ /\A[0-9]+\z/) {
      dbg("bouncegen: dkim: d=$d s=$s: no t=, its age is unknown");
      next;
    }
    if ($t > $now + CLOCK_SKEW || $now - $t > $max_age) {
      dbg("bouncegen: dkim: d=$d s=$s: t=$t outside the accepted age");
      next;
    }
    return "d=$d s=$s " . ($has_body ? 'header and body' : 'header (no body returned)');
  }
  return;
}

# ---------------------------------------------------------------------------------------------
# A resolver object for Mail::DKIM::DNS (the interface of Net::DNS::Resolver that it uses: send
# and errorstring): TXT answers from our configured keys, NXDOMAIN for everything else.

package Mail::SpamAssassin::Plugin::BouncegenDKIM::Keys;

sub new {
  my ($class, $keys) = @_;
  return bless({ keys => $keys }, $class);
}

sub errorstring { return 'NOERROR' }

sub send {
  my ($self, $name, $type) = @_;
  my $packet = Net::DNS::Packet->new($name, $type, 'IN');
  my $record = uc($type // '') eq 'TXT' ? $self->{keys}->{lc($name // '')} : undef;
  if (defined $record) {
    $packet->header->rcode('NOERROR');
    $packet->push(answer => Net::DNS::RR->new(name => $name, type => 'TXT', txtdata => [unpack('(a255)*', $record)]));
  } else {
    $packet->header->rcode('NXDOMAIN');
  }
  return $packet;
}

1;
