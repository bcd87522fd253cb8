package token_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/usersvc/usersvc/internal/token"
)

func pemBlock(t *testing.T, typ string, der []byte) string {
	t.Helper()
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func pkcs8(t *testing.T, k crypto.Signer) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock(t, "PRIVATE KEY", der)
}

func TestLoadPrivateKeys(t *testing.T) {
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	ec2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	file := "a comment before the keys\n" +
		pkcs8(t, ed) +
		pemBlock(t, "EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}) +
		pemBlock(t, "EC PRIVATE KEY", ecDER) +
		pemBlock(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)) +
		pkcs8(t, ec2)
	keys, err := token.LoadPrivateKeys([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	want := []crypto.Signer{ed, ec, rsaKey, ec2}
	if len(keys) != len(want) {
		t.Fatalf("loaded %d keys, want %d", len(keys), len(want))
	}
	for i, k := range keys {
		if !k.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(want[i].Public()) {
			t.Errorf("key %d is not the one in the file at that place", i)
		}
	}

	// Keys of one algorithm make a set, first key signing.
	ecKeys, _ := token.LoadPrivateKeys([]byte(pemBlock(t, "EC PRIVATE KEY", ecDER) + pkcs8(t, ec2)))
	ks, err := token.NewKeySet(token.ES256, ecKeys...)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := token.NewKeySet(token.ES256, ec)
	if len(ks.KIDs()) != 2 || ks.KIDs()[0] != first.KIDs()[0] {
		t.Fatalf("kids %v, first %v", ks.KIDs(), first.KIDs())
	}

	pubDER, _ := x509.MarshalPKIXPublicKey(ec.Public())
	bad := map[string]string{
		"empty":       "",
		"no PEM":      "not a key",
		"public key":  pemBlock(t, "PUBLIC KEY", pubDER),
		"certificate": pemBlock(t, "CERTIFICATE", []byte{1, 2, 3}),
		"key then public key": pkcs8(t, ed) +
			pemBlock(t, "PUBLIC KEY", pubDER),
		"corrupt PKCS#8":  pemBlock(t, "PRIVATE KEY", []byte{1, 2, 3}),
		"corrupt EC":      pemBlock(t, "EC PRIVATE KEY", []byte{1, 2, 3}),
		"corrupt RSA":     pemBlock(t, "RSA PRIVATE KEY", []byte{1, 2, 3}),
		"only parameters": pemBlock(t, "EC PARAMETERS", []byte{6, 1, 1}),
		"encrypted": string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY",
			Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte{1}})),
	}
	for name, data := range bad {
		if _, err := token.LoadPrivateKeys([]byte(data)); err == nil {
			t.Errorf("%s: LoadPrivateKeys succeeded", name)
		}
	}
}

func TestGenerateKeyFile(t *testing.T) {
	for _, alg := range []string{token.EdDSA, token.ES256, token.RS256} {
		t.Run(alg, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys", "jwt.pem")
			if err := token.GenerateKeyFile(path, alg); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if mode := st.Mode().Perm(); mode != 0o600 {
				t.Errorf("key file mode %o, want 600", mode)
			}
			data, _ := os.ReadFile(path)
			if !strings.HasPrefix(string(data), "-----BEGIN PRIVATE KEY-----\n") {
				t.Errorf("key file is not PKCS#8 PEM")
			}
			ks, err := token.LoadKeyFile(path, alg)
			if err != nil {
				t.Fatal(err)
			}
			if ks.Algorithm() != alg || len(ks.KIDs()) != 1 {
				t.Fatalf("loaded a %s set of %d keys", ks.Algorithm(), len(ks.KIDs()))
			}
			if alg == token.RS256 {
				keys, _ := token.LoadPrivateKeys(data)
				if bits := keys[0].(*rsa.PrivateKey).N.BitLen(); bits != 3072 {
					t.Errorf("RSA key of %d bits", bits)
				}
			}
			// It never replaces a key.
			if err := token.GenerateKeyFile(path, alg); !errors.Is(err, fs.ErrExist) {
				t.Fatalf("second GenerateKeyFile = %v, want fs.ErrExist", err)
			}
			again, _ := os.ReadFile(path)
			if string(again) != string(data) {
				t.Fatal("the key file changed")
			}
			// Only the key file is left in the directory.
			entries, _ := os.ReadDir(filepath.Dir(path))
			if len(entries) != 1 {
				t.Errorf("%d files in the key directory", len(entries))
			}
			// The wrong algorithm for the file is an error.
			other := token.EdDSA
			if alg == token.EdDSA {
				other = token.ES256
			}
			if _, err := token.LoadKeyFile(path, other); err == nil {
				t.Errorf("loading a %s key as %s succeeded", alg, other)
			}
		})
	}
	if err := token.GenerateKeyFile(filepath.Join(t.TempDir(), "k.pem"), token.HS256); err == nil {
		t.Error("GenerateKeyFile(HS256) succeeded")
	}
}

func TestLoadOrGenerate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jwt.pem")
	ks, created, err := token.LoadOrGenerate(path, token.EdDSA)
	if err != nil || !created {
		t.Fatalf("first LoadOrGenerate = %v, %v", created, err)
	}
	again, created, err := token.LoadOrGenerate(path, token.EdDSA)
	if err != nil || created {
		t.Fatalf("second LoadOrGenerate = %v, %v", created, err)
	}
	if ks.KIDs()[0] != again.KIDs()[0] || ks.Algorithm() != token.EdDSA {
		t.Fatal("a second start got another key")
	}
	if _, _, err := token.LoadOrGenerate(path, token.ES256); err == nil {
		t.Fatal("an Ed25519 file loaded as ES256")
	}

	// Many processes starting at once agree on one key.
	path = filepath.Join(t.TempDir(), "race.pem")
	var wg sync.WaitGroup
	kids := make([]string, 8)
	var createdN int
	var mu sync.Mutex
	for i := range kids {
		wg.Go(func() {
			ks, created, err := token.LoadOrGenerate(path, token.ES256)
			if err != nil {
				t.Error(err)
				return
			}
			kids[i] = ks.KIDs()[0]
			if created {
				mu.Lock()
				createdN++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, kid := range kids {
		if kid != kids[0] {
			t.Fatalf("concurrent starts got different keys: %v", kids)
		}
	}
	if createdN != 1 {
		t.Fatalf("%d starts report creating the file", createdN)
	}
}

func TestLoadOrGenerateSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "secret_key")
	s, created, err := token.LoadOrGenerateSecret(path)
	if err != nil || !created || len(s) < token.MinSecretLen {
		t.Fatalf("LoadOrGenerateSecret = %d bytes, %v, %v", len(s), created, err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode %o", st.Mode().Perm())
	}
	again, created, err := token.LoadOrGenerateSecret(path)
	if err != nil || created || string(again) != string(s) {
		t.Fatalf("second LoadOrGenerateSecret = %v, %v; same secret %v", created, err, string(again) == string(s))
	}
	if _, err := token.NewHMACKeySet(s); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(t.TempDir(), "short")
	os.WriteFile(short, []byte("tiny\n"), 0o600)
	if _, _, err := token.LoadOrGenerateSecret(short); err == nil {
		t.Fatal("a short secret file was accepted")
	}
}
