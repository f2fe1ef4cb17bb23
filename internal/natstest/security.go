package natstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// This file configures the server's authentication and TLS, so that a client
// can be tested against each way a production NATS asks it to prove who it is.

// WithUserPassword makes the server accept only user with password.
func WithUserPassword(user, password string) Option {
	return func(o *server.Options) { o.Username, o.Password = user, password }
}

// WithToken makes the server accept only clients presenting token.
func WithToken(token string) Option {
	return func(o *server.Options) { o.Authorization = token }
}

// WithNkeyUsers makes the server accept only clients that sign its nonce
// with the seed of one of the given user public keys ("U...").
func WithNkeyUsers(publicKeys ...string) Option {
	return func(o *server.Options) {
		o.Nkeys = nil
		for _, pk := range publicKeys {
			o.Nkeys = append(o.Nkeys, &server.NkeyUser{Nkey: pk})
		}
	}
}

// WithTLS makes the server require TLS with p's server certificate; mutual
// also requires a client certificate signed by p's CA.
func WithTLS(p *PKI, mutual bool) Option {
	return func(o *server.Options) {
		c := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{p.ServerCert}}
		if mutual {
			c.ClientAuth = tls.RequireAndVerifyClientCert
			c.ClientCAs = p.Pool
		}
		o.TLSConfig, o.TLS, o.TLSVerify, o.TLSTimeout = c, true, mutual, 5
	}
}

// NkeyUser is a user nkey pair; SeedFile holds the seed (mode 0600).
type NkeyUser struct {
	PublicKey string
	Seed      []byte
	SeedFile  string
}

// NewNkeyUser creates a user nkey pair and writes its seed to a file in a
// fresh t.TempDir().
func NewNkeyUser(t testing.TB) NkeyUser {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatalf("natstest: nkey: %v", err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatalf("natstest: nkey: %v", err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatalf("natstest: nkey: %v", err)
	}
	path := filepath.Join(t.TempDir(), "user.nk")
	writeFile(t, path, seed)
	return NkeyUser{PublicKey: pub, Seed: seed, SeedFile: path}
}

// PKI is a throw-away certificate authority with a server certificate for
// 127.0.0.1 and localhost and a client certificate, all as PEM files in a
// fresh t.TempDir() (the keys with mode 0600).
type PKI struct {
	CAFile                        string
	ServerCertFile, ServerKeyFile string
	ClientCertFile, ClientKeyFile string
	Pool                          *x509.CertPool  // trusts the CA
	ServerCert                    tls.Certificate // for a TLS server
	// ServerKeyPEM and ClientKeyPEM are the private keys, for leak checks.
	ServerKeyPEM, ClientKeyPEM []byte
}

// NewPKI generates a CA, a server and a client certificate (ECDSA P-256,
// valid for an hour).
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "natstest CA"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("natstest: CA: %v", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatalf("natstest: CA: %v", err)
	}
	p := &PKI{
		CAFile:         filepath.Join(dir, "ca.pem"),
		ServerCertFile: filepath.Join(dir, "server-cert.pem"), ServerKeyFile: filepath.Join(dir, "server-key.pem"),
		ClientCertFile: filepath.Join(dir, "client-cert.pem"), ClientKeyFile: filepath.Join(dir, "client-key.pem"),
		Pool: x509.NewCertPool(),
	}
	p.Pool.AddCert(ca)
	writeFile(t, p.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))

	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, certFile, keyFile string) (certPEM, keyPEM []byte) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		if usage == x509.ExtKeyUsageServerAuth {
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
			tmpl.DNSNames = []string{"localhost"}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatalf("natstest: certificate %s: %v", cn, err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatalf("natstest: key %s: %v", cn, err)
		}
		certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
		writeFile(t, certFile, certPEM)
		writeFile(t, keyFile, keyPEM)
		return certPEM, keyPEM
	}
	serverCert, serverKey := leaf(2, "127.0.0.1", x509.ExtKeyUsageServerAuth, p.ServerCertFile, p.ServerKeyFile)
	_, p.ClientKeyPEM = leaf(3, "symbridge", x509.ExtKeyUsageClientAuth, p.ClientCertFile, p.ClientKeyFile)
	p.ServerKeyPEM = serverKey
	if p.ServerCert, err = tls.X509KeyPair(serverCert, serverKey); err != nil {
		t.Fatalf("natstest: server key pair: %v", err)
	}
	return p
}

// Trust is a decentralised (operator mode) setup: an operator, a system
// account, an account with JetStream enabled and a user of it whose creds
// file the server accepts, plus a creds file of a stranger (a user of an
// account the server does not know), which it must refuse.
type Trust struct {
	Operator   *jwt.OperatorClaims
	AccountJWT string
	// CredsFile is the accepted user's creds file (mode 0600) and Creds its
	// content (user JWT and seed), for leak checks.
	CredsFile string
	Creds     []byte
	// StrangerCredsFile and StrangerCreds belong to the refused user.
	StrangerCredsFile string
	StrangerCreds     []byte

	accountPub, systemPub, systemJWT string
}

// NewTrust generates the operator, the accounts and the users' creds files.
func NewTrust(t testing.TB) *Trust {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("natstest: trust: %v", err)
		}
	}
	opKP, err := nkeys.CreateOperator()
	must(err)
	opPub, err := opKP.PublicKey()
	must(err)
	tr := &Trust{Operator: jwt.NewOperatorClaims(opPub)}
	tr.Operator.Name = "natstest"

	account := func(name string, js bool) (nkeys.KeyPair, string, string) {
		kp, err := nkeys.CreateAccount()
		must(err)
		pub, err := kp.PublicKey()
		must(err)
		ac := jwt.NewAccountClaims(pub)
		ac.Name = name
		if js {
			ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		}
		signed, err := ac.Encode(opKP)
		must(err)
		return kp, pub, signed
	}
	var accKP nkeys.KeyPair
	_, tr.systemPub, tr.systemJWT = account("SYS", false)
	accKP, tr.accountPub, tr.AccountJWT = account("APP", true)
	strangerKP, _, _ := account("STRANGER", true) // never given to the server

	creds := func(signer nkeys.KeyPair, name string) ([]byte, string) {
		ukp, err := nkeys.CreateUser()
		must(err)
		upub, err := ukp.PublicKey()
		must(err)
		seed, err := ukp.Seed()
		must(err)
		uc := jwt.NewUserClaims(upub)
		uc.Name = name
		ujwt, err := uc.Encode(signer)
		must(err)
		data, err := jwt.FormatUserConfig(ujwt, seed)
		must(err)
		path := filepath.Join(t.TempDir(), name+".creds")
		writeFile(t, path, data)
		return data, path
	}
	tr.Creds, tr.CredsFile = creds(accKP, "app")
	tr.StrangerCreds, tr.StrangerCredsFile = creds(strangerKP, "stranger")
	return tr
}

// Option makes the server trust tr's operator and know its accounts.
func (tr *Trust) Option() Option {
	return func(o *server.Options) {
		r := &server.MemAccResolver{}
		_ = r.Store(tr.accountPub, tr.AccountJWT) // a map store: never fails
		_ = r.Store(tr.systemPub, tr.systemJWT)
		o.TrustedOperators = []*jwt.OperatorClaims{tr.Operator}
		o.AccountResolver = r
		o.SystemAccount = tr.systemPub
	}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("natstest: key: %v", err)
	}
	return k
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("natstest: %v", err)
	}
}
