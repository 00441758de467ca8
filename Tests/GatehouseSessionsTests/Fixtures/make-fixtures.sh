#!/bin/sh
# Regenerates the password fixtures with real tools (Debian: apache2-utils for htpasswd,
# whois for mkpasswd). The tests only read the committed output; they never run the tools.
#   users.htpasswd    accepted schemes, written the way operators write them
#   passwords.tsv     user<TAB>password<TAB>tool, the passwords behind users.htpasswd
#   refused.htpasswd  weaker schemes as the same tools write them (UsersFile must refuse each)
set -eu
cd "$(dirname "$0")"
users=users.htpasswd; passwords=passwords.tsv; refused=refused.htpasswd
rm -f "$users" "$passwords" "$refused"

add() { # user password tool hash
    printf '%s:%s\n' "$1" "$4" >> "$users"
    printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$passwords"
}

printf '# gatehouse users (fixture; see make-fixtures.sh)\n\n' > "$users"
htpasswd -B -C 5 -b "$users" alice 'correct horse battery staple'
printf 'alice\tcorrect horse battery staple\thtpasswd -B -C 5\n' >> "$passwords"
htpasswd -B -C 5 -b "$users" bob 'p@ss wörd:1 with spaces'
printf 'bob\tp@ss wörd:1 with spaces\thtpasswd -B -C 5\n' >> "$passwords"
htpasswd -5 -b "$users" grace 'sha512 by htpasswd'
printf 'grace\tsha512 by htpasswd\thtpasswd -5\n' >> "$passwords"
printf '\n# from mkpasswd\n' >> "$users"
add carol 'bcrypt 2b' 'mkpasswd -m bcrypt -R 5' "$(mkpasswd -m bcrypt -R 5 'bcrypt 2b')"
add dave 'bcrypt 2a' 'mkpasswd -m bcrypt-a -R 5' "$(mkpasswd -m bcrypt-a -R 5 'bcrypt 2a')"
add erin 'sha512 default rounds' 'mkpasswd -m sha-512' "$(mkpasswd -m sha-512 'sha512 default rounds')"
add frank 'sha512 10000 rounds' 'mkpasswd -m sha-512 -R 10000' "$(mkpasswd -m sha-512 -R 10000 'sha512 10000 rounds')"
long='0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-tail-beyond-72'
add ivan "$long" 'mkpasswd -m bcrypt -R 5' "$(mkpasswd -m bcrypt -R 5 "$long")"

printf '# weaker schemes, as the tools write them\n' > "$refused"
htpasswd -m -b "$refused" apr1user secret      # $apr1$ (Apache MD5)
htpasswd -s -b "$refused" shauser secret       # {SHA}
htpasswd -d -b "$refused" cryptuser secret     # DES crypt, 13 characters
htpasswd -p -b "$refused" plainuser secret     # plaintext
htpasswd -2 -b "$refused" sha256user secret    # $5$ (SHA-256 crypt)
printf 'md5user:%s\n' "$(mkpasswd -m md5crypt secret)" >> "$refused"          # $1$
printf 'yescryptuser:%s\n' "$(mkpasswd -m yescrypt secret)" >> "$refused"     # $y$
