#
# Mail::SpamAssassin::Plugin::BouncegenRescue::Ledger - the rescue plugin's client of the
# sent-mail ledger: the store URL, the entry of a Message-ID (the format of bouncegen's Python
# writer, bouncegen.ledger: generator/ledger/keys.py) and the lookup in SQLite (DBI, DBD::SQLite)
# or Redis (SpamAssassin's TinyRedis) under one time-out. One object per plugin object keeps the
# connection and the key between messages. Bundled into BouncegenRescue.pm by bouncegen render;
# the plugin's POD says what a ledger hit means.

package Mail::SpamAssassin::Plugin::BouncegenRescue::Ledger;

use strict;
use warnings;
use re 'taint';

use Mail::SpamAssassin::Timeout;
use Mail::SpamAssassin::Util;
use Digest::SHA ();
use Mail::SpamAssassin::Plugin::Bouncegen::Defaults qw(REDIS_PORT REDIS_PREFIX);

# A store URL: sqlite:/abs/path or redis://[:password@]host[:port][/db], as a hash, or undef if
# it is neither. The URL as it may be logged (shown) keeps the password out (":***@").
sub parse_store {
  my ($value) = @_;
  if ($value =~ m{\Asqlite:(/[A-Za-z0-9._/-]+)\z}) {
    my $path = $1;
    return if $path =~ m{(?:\A|/)\.\.(?:/|\z)} || $path =~ m{/\z};
    $path = Mail::SpamAssassin::Util::untaint_var($path);    # checked above; spamd runs with -T
    return { type => 'sqlite', path => $path, shown => "sqlite:$path" };
  }
  if ($value =~ m{\Aredis://(?::([^\s\@/#]*)\@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::([0-9]{1,5}))?(?:/([0-9]{0,5}))?\z}) {
    my ($pass, $host, $port, $db) = ($1, $2, $3 // REDIS_PORT, $4);
    return unless $port >= 1 && $port <= 65535;
    $db = (defined $db && $db ne '') ? 0 + $db : 0;
    return if $db > 65535;
    $pass =~ s/%([0-9A-Fa-f]{2})/chr(hex($1))/ge if defined $pass;
    $pass = undef if defined $pass && $pass eq '';
    my $shown = 'redis://' . (defined $pass ? ':***@' : '') . "$host:$port/$db";
    # checked above; spamd runs with -T and the socket calls refuse tainted values
    my ($server, $password) = map { Mail::SpamAssassin::Util::untaint_var($_) } ("$host:$port", $pass);
    return { type => 'redis', server => $server, db => 0 + $db, password => $password, shown => $shown };
  }
  return;
}

# A Message-ID normalised as the Python writer does (keys.normalise), or undef for none. White
# space and case are ASCII only, so bytes and characters give the same result.
sub normalise {
  my ($value) = @_;
  return unless defined $value;
  my $id;
  if ($value =~ /<([^>]*)>/) {
    $id = $1;
  } else {
    ($id) = $value =~ /\A[ \t\r\n\f\x0b]*([^ \t\r\n\f\x0b]*)/;
  }
  return unless defined $id;
  $id =~ s/[ \t\r\n\f\x0b]+//g;
  return if $id eq '';
  my $at = rindex($id, '@');
  if ($at >= 0) {
    (my $domain = substr($id, $at + 1)) =~ tr/A-Z/a-z/;
    $id = substr($id, 0, $at + 1) . $domain;
  }
  return $id;
}

# The ledger's entry for a normalised Message-ID: HMAC-SHA256 with the site key, 16 bytes, hex.
sub entry {
  my ($key, $id) = @_;
  utf8::encode($id) if utf8::is_utf8($id);
  return substr(Digest::SHA::hmac_sha256_hex($id, $key), 0, 32);
}

sub new {
  my ($class) = @_;
  return bless({}, $class);
}

# Whether one of the normalised Message-IDs @$ids was recorded in the last $days days:
# (1, undef) recorded, (0, undef) not recorded, (undef, error) unknown (no answer within $secs
# seconds, connection included, or any other failure; the next lookup starts afresh).
sub lookup {
  my ($self, %a) = @_;
  my ($store, $secs) = @a{qw(store secs)};
  my ($found, $err);
  my $t = Mail::SpamAssassin::Timeout->new({ secs => $secs });
  $t->run_and_catch(sub {
    eval {
      my $key = $self->_key($a{key_file});
      my %h = map { (entry($key, $_) => 1) } @{$a{ids}};
      my @h = sort keys %h;
      $found = $store->{type} eq 'sqlite'
        ? $self->_sqlite($store, \@h, int(time / 86400) - $a{days}, $secs)
        : $self->_redis($store, \@h);
      1;
    } or do {
      $err = $@ || 'unknown error';
      $found = undef;
    };
  });
  if ($t->timed_out) {
    ($found, $err) = (undef, "no answer within ${secs}s");
  }
  if (!defined $found) {
    # start afresh next time (a reconnect, a new handle)
    delete $self->{dbh};
    delete $self->{redis};
    $err //= 'unknown error';
    $err =~ s/\s+\z//;
    $err =~ s/\Q$store->{password}\E/***/g if defined $store->{password};
  }
  return ($found, $err);
}

# The site key (64 hex characters in the file) as bytes; read once per path.
sub _key {
  my ($self, $path) = @_;
  die "no bouncegen_ledger_key set\n" unless defined $path;
  return $self->{key}{$path} if $self->{key}{$path};
  open(my $fh, '<', $path) or die "cannot read the key file $path: $!\n";
  local $/;
  my $text = <$fh> // '';
  close($fh);
  $text =~ s/\s+//g;
  die "the key file $path does not hold 64 hex characters\n" unless $text =~ /\A([0-9A-Fa-f]{64})\z/;
  return $self->{key}{$path} = pack('H*', $1);
}

sub _sqlite {
  my ($self, $store, $h, $since, $secs) = @_;
  my $dbh = $self->{dbh};
  if (!$dbh) {
    require DBI;
    require DBD::SQLite::Constants;
    # Read-write without create: a missing database is an error, not an empty ledger (and a
    # WAL reader needs to write the -shm index).
    $dbh = DBI->connect("dbi:SQLite:dbname=$store->{path}", '', '', {
      RaiseError => 1, PrintError => 0, AutoCommit => 1,
      sqlite_open_flags => DBD::SQLite::Constants::SQLITE_OPEN_READWRITE(),
    });
    # Below the overall timeout: a busy wait inside SQLite cannot be interrupted by the alarm.
    $dbh->sqlite_busy_timeout(int($secs * 500));
    $self->{dbh} = $dbh;
  }
  my $sql = 'SELECT 1 FROM sent WHERE h IN (' . join(',', ('?') x @$h) . ') AND day >= ? LIMIT 1';
  my $row = $dbh->selectrow_arrayref($sql, undef, @$h, $since);
  return $row ? 1 : 0;
}

sub _redis {
  my ($self, $store, $h) = @_;
  my $r = $self->{redis};
  if (!$r) {
    require Mail::SpamAssassin::Util::TinyRedis;
    $r = Mail::SpamAssassin::Util::TinyRedis->new(
      server => $store->{server},
      on_connect => sub {
        my ($redis) = @_;
        $redis->call('AUTH', $store->{password}) if defined $store->{password};
        $redis->call('SELECT', $store->{db}) if $store->{db};
      },
    ) or die "cannot connect to $store->{server}: $!\n";
    $self->{redis} = $r;
  }
  my $n = $r->call('EXISTS', map { REDIS_PREFIX . $_ } @$h);
  die "unexpected answer to EXISTS\n" unless defined $n && $n =~ /\A[0-9]+\z/;
  return $n > 0 ? 1 : 0;
}

1;
