package symphonytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"github.com/symbridge/symbridge/pkg/symphony/symphonytest/spec"
	"math/big"
	"net/http"
	"testing"
	"time"
)

// testCA issues client certificates for certificate authentication.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

func (ca *testCA) client(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestCertificateAuthOverHTTPS(t *testing.T) {
	ca := newTestCA(t)
	v := spec.ForTest(t)
	k, _ := keys(t)
	a := New(Config{Username: testUser, PublicKey: &k.PublicKey, ClientCAs: ca.pool(), LongPoll: 50 * time.Millisecond})
	a.Use(func(h http.Handler) http.Handler { return v.Middleware(h, nil) })
	base, roots := a.StartTLS(nil)
	t.Cleanup(a.Close)

	clientWith := func(certs ...tls.Certificate) *client {
		c := newClient(t, base)
		c.hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs}}
		return c
	}
	c := clientWith(ca.client(t, testUser))
	var tok struct{ Name, Token string }
	decode(t, c.must(200, "POST", "/sessionauth/v1/authenticate", nil).body, &tok)
	if tok.Name != "sessionToken" {
		t.Errorf("name %q", tok.Name)
	}
	c.session = tok.Token
	decode(t, c.must(200, "POST", "/keyauth/v1/authenticate", nil).body, &tok)
	if tok.Name != "keyManagerToken" {
		t.Errorf("name %q", tok.Name)
	}
	c.km = tok.Token
	c.read(c.createFeed(nil), "")

	clientWith(ca.client(t, "intruder")).must(403, "POST", "/sessionauth/v1/authenticate", nil)
	clientWith().must(400, "POST", "/keyauth/v1/authenticate", nil)
	if r := clientWith(newTestCA(t).client(t, testUser)).call("POST", "/sessionauth/v1/authenticate", nil); r.err == nil {
		t.Errorf("a certificate from an unknown CA was accepted: %d", r.status)
	}
	clientWith().login() // RSA login over HTTPS too

	st := a.Stats()
	if st.CertAuths != 2 || st.AuthFailures != 2 {
		t.Errorf("stats %+v", st)
	}
	for _, f := range v.Failures() {
		t.Errorf("OpenAPI validation: %v", f)
	}

	// Without ClientCAs, certificate authentication is refused; over plain
	// HTTP it cannot work at all.
	plain := New(Config{Username: testUser})
	t.Cleanup(plain.Close)
	newClient(t, plain.Start()).must(400, "POST", "/sessionauth/v1/authenticate", nil)
	noCA := New(Config{Username: testUser})
	t.Cleanup(noCA.Close)
	url, roots2 := noCA.StartTLS(nil)
	c2 := newClient(t, url)
	c2.hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots2, Certificates: []tls.Certificate{ca.client(t, testUser)}}}
	c2.must(403, "POST", "/sessionauth/v1/authenticate", nil)
}
