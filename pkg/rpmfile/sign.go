package rpmfile

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// signer makes the detached OpenPGP signatures rpm keeps in the signature
// header, with the key nfpm would use for the same package definition.
type signer struct {
	key *openpgp.Entity
	cfg *packet.Config
}

// newSigner reads a private key (armored or binary) that can sign,
// decrypting it with passphrase if it is protected. Signatures carry
// created (or the key's creation time, if later) as their creation time,
// so that a signed build is as reproducible as an unsigned one: RSA
// signatures are deterministic.
func newSigner(keyFile, passphrase string, created time.Time) (*signer, error) {
	data, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("reading signing key: %w", err)
	}
	var ring openpgp.EntityList
	if block, aerr := armor.Decode(bytes.NewReader(data)); aerr == nil {
		ring, err = openpgp.ReadKeyRing(block.Body)
	} else {
		ring, err = openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("reading signing key %q: %w", keyFile, err)
	}
	var key *openpgp.Entity
	for _, e := range ring {
		if e.PrivateKey == nil {
			continue
		}
		if key != nil {
			return nil, fmt.Errorf("reading signing key %q: it holds more than one private key", keyFile)
		}
		key = e
	}
	if key == nil {
		return nil, fmt.Errorf("reading signing key %q: no private key in it", keyFile)
	}
	if err := decrypt(key, []byte(passphrase)); err != nil {
		return nil, fmt.Errorf("unlocking signing key %q: %w", keyFile, err)
	}
	if created.IsZero() {
		created = time.Now()
	}
	// A signature older than its key is invalid; a key made after the
	// sources' epoch signs at its own creation time, which is as fixed.
	for _, k := range append([]openpgp.Subkey{{PublicKey: key.PrimaryKey}}, key.Subkeys...) {
		if k.PublicKey != nil && k.PublicKey.CreationTime.After(created) {
			created = k.PublicKey.CreationTime
		}
	}
	return &signer{key: key, cfg: &packet.Config{
		DefaultHash: crypto.SHA256,
		Time:        func() time.Time { return created },
	}}, nil
}

func decrypt(e *openpgp.Entity, pass []byte) error {
	keys := []*packet.PrivateKey{e.PrivateKey}
	for _, s := range e.Subkeys {
		keys = append(keys, s.PrivateKey)
	}
	for _, k := range keys {
		if k == nil || !k.Encrypted {
			continue
		}
		if len(pass) == 0 {
			return errors.New("the key is protected and no passphrase was given (set NFPM_RPM_PASSPHRASE)")
		}
		if err := k.Decrypt(pass); err != nil {
			return err
		}
	}
	return nil
}

// sign returns a binary detached signature of r.
func (s *signer) sign(r io.Reader) ([]byte, error) {
	var b bytes.Buffer
	if err := openpgp.DetachSign(&b, s.key, r, s.cfg); err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	return b.Bytes(), nil
}
