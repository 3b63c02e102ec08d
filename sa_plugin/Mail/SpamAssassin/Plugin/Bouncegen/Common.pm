#
# Mail::SpamAssassin::Plugin::Bouncegen::Common - what bouncegen's two plugins share: their
# constructor, the checks of their numeric and path settings, the walk through a message's MIME
# tree, a warning logged at most once a minute. Not a plugin of its own (no loadplugin line):
# bouncegen render bundles it into BouncegenRescue.pm and BouncegenDKIM.pm, and it is compiled
# once per process, from whichever of the two SpamAssassin loads first.

package Mail::SpamAssassin::Plugin::Bouncegen::Common;

use strict;
use warnings;
use re 'taint';

use Mail::SpamAssassin::Plugin;
use Mail::SpamAssassin::Conf;
use Mail::SpamAssassin::Conf::Parser;
use Mail::SpamAssassin::Logger;
use Mail::SpamAssassin::Util;
use Exporter 'import';

our @ISA = qw(Mail::SpamAssassin::Plugin);
our @EXPORT_OK = qw(admin_setting days_setting range_setting path_setting walk_parts);

use constant WARN_EVERY => 60;    # seconds between two log lines about one outage

# A plugin of ours (a subclass): its eval rules (the list EVAL_RULES) and its settings (the
# list its method settings returns, each setting's POD beside it) registered.
sub new {
  my ($class, $mailsa) = @_;
  $class = ref($class) || $class;
  my $self = $class->SUPER::new($mailsa);
  bless($self, $class);
  $self->register_eval_rule($_) for $self->EVAL_RULES;
  $self->set_config($mailsa->{conf});
  return $self;
}

sub set_config {
  my ($self, $conf) = @_;
  $conf->{parser}->register_commands([$self->settings]);
  return;
}

# A site-only setting (is_admin: spamd takes it from the site configuration, never from a
# user's preferences), as SpamAssassin's parser registers it.
sub admin_setting {
  my ($name, $type, $default, $code) = @_;
  return { setting => $name, is_admin => 1, type => $type, default => $default, code => $code };
}

# A site-only setting of a whole number of days, 1 to $max.
sub days_setting {
  my ($name, $default, $max) = @_;
  return admin_setting($name, $Mail::SpamAssassin::Conf::CONF_TYPE_NUMERIC, $default,
                       range_setting(\&Mail::SpamAssassin::Conf::Parser::set_numeric_value, 1, $max, 1));
}

# The code of a numeric setting: SpamAssassin's own parser of the setting's type
# (Mail::SpamAssassin::Conf::Parser::set_numeric_value for CONF_TYPE_NUMERIC, set_duration_value
# for CONF_TYPE_DURATION), then the range, and a whole number where $whole is set. Anything else
# is a lint error.
sub range_setting {
  my ($parse, $min, $max, $whole) = @_;
  return sub {
    my ($conf, $key, $value, $line) = @_;
    my %parsed;
    my $err = $parse->(\%parsed, $key, $value, $line);
    return $err unless defined $parsed{$key};
    my $n = $parsed{$key};
    return $Mail::SpamAssassin::Conf::INVALID_VALUE if $n < $min || $n > $max || ($whole && $n != int($n));
    $conf->{$key} = $n;
    return;
  };
}

# The code of a setting that names a file: an absolute path of plain characters, no "..".
sub path_setting {
  my ($conf, $key, $value, $line) = @_;
  return $Mail::SpamAssassin::Conf::MISSING_REQUIRED_VALUE unless defined $value && $value ne '';
  return $Mail::SpamAssassin::Conf::INVALID_VALUE
    unless $value =~ m{\A(/[A-Za-z0-9._/-]+)\z} && $value !~ m{(?:\A|/)\.\.(?:/|\z)};
  $conf->{$key} = Mail::SpamAssassin::Util::untaint_var($1);    # checked above; spamd runs with -T
  return;
}

# Calls $visit->($node, $top) for the message and every part below it, breadth first ($top is
# true for the message itself, whose header is the bounce's own, never the original's).
sub walk_parts {
  my ($pms, $visit) = @_;
  my $msg = $pms->{msg};
  $msg->find_parts(qr/./);    # make sure the MIME tree is parsed
  my @todo = ([$msg, 1]);
  while (my $item = shift @todo) {
    my ($node, $top) = @$item;
    $visit->($node, $top);
    push @todo, map { [$_, 0] } @{$node->{body_parts} || []};
  }
  return;
}

# Logs "bouncegen: $what $consequence" as a warning at most once a minute per process and $slot
# (an outage is one line a minute, not one a message); "bouncegen: $what" as a debug line between.
sub warn_limited {
  my ($self, $slot, $what, $consequence) = @_;
  my $now = time;
  if ($now - ($self->{bouncegen_warned}{$slot} // 0) >= WARN_EVERY) {
    $self->{bouncegen_warned}{$slot} = $now;
    Mail::SpamAssassin::Logger::log_message('warn', "bouncegen: $what $consequence");
  } else {
    dbg("bouncegen: $what");
  }
  return;
}

1;
