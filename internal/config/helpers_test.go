package config_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pavlo-v-chernykh/keystore-go/v4"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/symbridge/symbridge/internal/config"
)

// Secrets used by the fixtures; tests assert none of them is ever printed.
const (
	certPassword  = "cert-pw-Zq81"
	storePassword = "store-pw-Kx27"
	natsToken     = "nats-token-Vb55"
	natsPassword  = "nats-pw-Hy09"
	proxyPassword = "proxy-pw-Lm33"
)

// fixtures are generated once per test binary: RSA key generation is the
// slow part.
type fixtures struct {
	pkcs1PEM, pkcs8PEM []byte // the bot's RSA key
	keyBody            string // a line of the key's base64 body, to search output for

	ca, otherCA     *x509.Certificate
	leaf            *x509.Certificate // CN=tibot, signed by ca
	otherLeaf       *x509.Certificate // signed by otherCA
	caPEM           []byte
	certP12         []byte // leaf + key + ca, PKCS#12 Modern, certPassword
	certPEM         []byte // leaf + key in PEM
	trustP12        []byte // ca, PKCS#12 Modern trust store, storePassword
	trustJKS        []byte // ca, JKS, storePassword
	trustJKSNoAlias []byte
}

var (
	fixOnce sync.Once
	fix     fixtures
	fixErr  error
)

func getFixtures(t *testing.T) *fixtures {
	t.Helper()
	fixOnce.Do(func() { fixErr = fix.generate() })
	if fixErr != nil {
		t.Fatalf("generate fixtures: %v", fixErr)
	}
	return &fix
}

func (f *fixtures) generate() error {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	f.pkcs1PEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)})
	p8, err := x509.MarshalPKCS8PrivateKey(rk)
	if err != nil {
		return err
	}
	f.pkcs8PEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})
	f.keyBody = strings.Split(string(f.pkcs1PEM), "\n")[3]

	caKey, ca, err := selfSigned("Test CA")
	if err != nil {
		return err
	}
	otherKey, otherCA, err := selfSigned("Other CA")
	if err != nil {
		return err
	}
	f.ca, f.otherCA = ca, otherCA
	leafKey, leaf, err := signed("tibot", ca, caKey)
	if err != nil {
		return err
	}
	_, otherLeaf, err := signed("tibot", otherCA, otherKey)
	if err != nil {
		return err
	}
	f.leaf, f.otherLeaf = leaf, otherLeaf
	f.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})

	if f.certP12, err = pkcs12.Modern.Encode(leafKey, leaf, []*x509.Certificate{ca}, certPassword); err != nil {
		return err
	}
	leafKeyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		return err
	}
	f.certPEM = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: leafKeyDER})...)
	if f.trustP12, err = pkcs12.Modern.EncodeTrustStore([]*x509.Certificate{ca}, storePassword); err != nil {
		return err
	}

	ks := keystore.New()
	if err := ks.SetTrustedCertificateEntry("testca", keystore.TrustedCertificateEntry{
		CreationTime: time.Now(),
		Certificate:  keystore.Certificate{Type: "X509", Content: ca.Raw},
	}); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := ks.Store(&buf, []byte(storePassword)); err != nil {
		return err
	}
	f.trustJKS = bytes.Clone(buf.Bytes())
	buf.Reset()
	if err := keystore.New().Store(&buf, []byte(storePassword)); err != nil {
		return err
	}
	f.trustJKSNoAlias = bytes.Clone(buf.Bytes())
	return nil
}

func selfSigned(cn string) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	c, err := x509.ParseCertificate(der)
	return key, c, err
}

func signed(cn string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	c, err := x509.ParseCertificate(der)
	return key, c, err
}

// writeFile writes data into a fresh temp dir with the given mode.
func writeFile(t *testing.T, name string, data []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // WriteFile's mode is subject to umask
		t.Fatal(err)
	}
	return p
}

// yamlDoc renders dotted keys with YAML literal values as a nested document.
func yamlDoc(kv map[string]string) string {
	type node = map[string]any
	root := node{}
	for k, v := range kv {
		parts := strings.Split(k, ".")
		n := root
		for _, p := range parts[:len(parts)-1] {
			child, ok := n[p].(node)
			if !ok {
				child = node{}
				n[p] = child
			}
			n = child
		}
		n[parts[len(parts)-1]] = v
	}
	var b strings.Builder
	var write func(n node, indent string)
	write = func(n node, indent string) {
		keys := make([]string, 0, len(n))
		for k := range n {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			switch v := n[k].(type) {
			case node:
				b.WriteString(indent + k + ":\n")
				write(v, indent+"  ")
			case string:
				b.WriteString(indent + k + ": " + v + "\n")
			}
		}
	}
	write(root, "")
	return b.String()
}

// loadYAML writes the document to a temp file and loads it.
func loadYAML(t *testing.T, doc string, environ []string, overrides map[string]any) (*config.Config, error) {
	t.Helper()
	p := writeFile(t, "config.yaml", []byte(doc), 0o600)
	return config.Load(p, environ, overrides)
}

// validBase is a configuration that passes Validate; tests change one thing.
func validBase(t *testing.T) map[string]string {
	t.Helper()
	key := writeFile(t, "bot.pem", getFixtures(t).pkcs1PEM, 0o600)
	return map[string]string{
		"host":                "acme.symphony.com",
		"bot.username":        "tibot",
		"bot.privateKey.path": key,
		"nats.url":            "nats://127.0.0.1:4222",
	}
}

func with(base map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(base)+len(kv)/2)
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "<delete>" {
			delete(out, kv[i])
			continue
		}
		out[kv[i]] = kv[i+1]
	}
	return out
}

func mustLoad(t *testing.T, doc string, environ []string, overrides map[string]any) *config.Config {
	t.Helper()
	c, err := loadYAML(t, doc, environ, overrides)
	if err != nil {
		t.Fatalf("Load: %v\n--- config ---\n%s", err, doc)
	}
	return c
}
