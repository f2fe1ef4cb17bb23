package config

import (
	"bytes"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/pavlo-v-chernykh/keystore-go/v4"
	"software.sslmate.com/src/go-pkcs12"
)

// Errors about secrets are deliberately generic: none of them carries key
// material or a password.
var (
	errCertificatePassword = errors.New("cannot decrypt the PKCS#12 certificate: wrong password")
	errTrustStorePassword  = errors.New("cannot open the trust store: wrong password")
)

// checkRSAPrivateKeyPEM verifies that data holds an unencrypted RSA private
// key in PKCS#1 or PKCS#8 PEM, the forms the BDK accepts for RS512 JWTs.
func checkRSAPrivateKeyPEM(data []byte) error {
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return errors.New("no PEM private key found (expected BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY)")
		}
		if block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] != "" {
			return errors.New("encrypted private keys are not supported; decrypt it (openssl pkey -in KEY -out PLAIN)")
		}
		switch block.Type {
		case "RSA PRIVATE KEY":
			if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
				return errors.New("cannot parse the PKCS#1 RSA private key")
			}
			return nil
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return errors.New("cannot parse the PKCS#8 private key")
			}
			if _, ok := k.(*rsa.PrivateKey); !ok {
				return fmt.Errorf("the private key is %T, symbridge needs an RSA key (JWT RS512)", k)
			}
			return nil
		}
	}
}

// privateKeyContentPEM accepts inline key content as PEM text, or as base64
// of PEM or of a DER key (the BDK's content fields are byte arrays, which
// Jackson reads from base64), and returns PEM.
func privateKeyContentPEM(s string) ([]byte, error) {
	data := decodeContent(s)
	if bytes.Contains(data, []byte("-----BEGIN")) {
		if err := checkRSAPrivateKeyPEM(data); err != nil {
			return nil, err
		}
		return data, nil
	}
	if _, err := x509.ParsePKCS1PrivateKey(data); err == nil {
		return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: data}), nil
	}
	if k, err := x509.ParsePKCS8PrivateKey(data); err == nil {
		if _, ok := k.(*rsa.PrivateKey); !ok {
			return nil, fmt.Errorf("the private key is %T, symbridge needs an RSA key (JWT RS512)", k)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: data}), nil
	}
	return nil, errors.New("no RSA private key found (expected PEM text, or base64 of PEM or DER)")
}

// decodeContent turns an inline content value into bytes: PEM text as is,
// otherwise base64 (whitespace ignored) when it decodes, otherwise the raw
// text.
func decodeContent(s string) []byte {
	if strings.Contains(s, "-----BEGIN") {
		return []byte(s)
	}
	compact := strings.Join(strings.Fields(s), "")
	if b, err := base64.StdEncoding.DecodeString(compact); err == nil && len(b) > 0 {
		return b
	}
	return []byte(s)
}

// parseCertificate reads the bot's client certificate: PKCS#12 (what BDK
// users have; go-pkcs12 reads current OpenSSL and Java files) or PEM holding
// the certificate chain and the key.
func parseCertificate(data []byte, password string) (*tls.Certificate, error) {
	if bytes.Contains(data, []byte("-----BEGIN")) {
		cert, err := tls.X509KeyPair(data, data)
		if err != nil {
			return nil, errors.New("cannot read the PEM certificate and key (both must be in the file)")
		}
		return &cert, nil
	}
	key, leaf, cas, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		if errors.Is(err, pkcs12.ErrIncorrectPassword) || errors.Is(err, pkcs12.ErrDecryption) {
			return nil, errCertificatePassword
		}
		return nil, fmt.Errorf("cannot read the PKCS#12 certificate: %w", err)
	}
	cert := &tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
	for _, ca := range cas {
		cert.Certificate = append(cert.Certificate, ca.Raw)
	}
	return cert, nil
}

const (
	jksMagic   = 0xFEEDFEED
	jceksMagic = 0xCECECECE
)

// parseTrustStore reads the certificates of a trust store in the formats BDK
// users have: a PEM bundle, a Java KeyStore (JKS) or PKCS#12.
func parseTrustStore(data []byte, password string) ([]*x509.Certificate, error) {
	if bytes.Contains(data, []byte("-----BEGIN")) {
		return parsePEMCertificates(data)
	}
	if len(data) >= 4 {
		switch binary.BigEndian.Uint32(data) {
		case jksMagic:
			return parseJKS(data, password)
		case jceksMagic:
			return nil, errors.New("JCEKS trust stores are not supported; convert it: keytool -importkeystore -srcstoretype JCEKS -deststoretype PKCS12")
		}
	}
	certs, err := pkcs12.DecodeTrustStore(data, password)
	if err != nil {
		if errors.Is(err, pkcs12.ErrIncorrectPassword) || errors.Is(err, pkcs12.ErrDecryption) {
			return nil, errTrustStorePassword
		}
		return nil, fmt.Errorf("not a PEM bundle, JKS or PKCS#12 trust store: %w", err)
	}
	if len(certs) == 0 {
		return nil, errors.New("the PKCS#12 trust store holds no certificate")
	}
	return certs, nil
}

func parsePEMCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("the PEM bundle holds no CERTIFICATE block")
	}
	return certs, nil
}

// parseJKS reads the trusted certificates of a Java KeyStore. Without a
// password the store's integrity digest cannot be checked; Java then loads
// the entries anyway (KeyStore.load with a null password), and so does
// symbridge: trusted-certificate entries are not encrypted.
func parseJKS(data []byte, password string) ([]*x509.Certificate, error) {
	ks := keystore.New()
	if err := ks.Load(bytes.NewReader(data), []byte(password)); err != nil {
		switch {
		case len(ks.Aliases()) == 0:
			return nil, fmt.Errorf("cannot read the JKS trust store: %w", err)
		case password != "":
			// The entries parsed, so the digest is what failed.
			return nil, errTrustStorePassword
		}
	}
	var certs []*x509.Certificate
	for _, alias := range ks.Aliases() {
		if !ks.IsTrustedCertificateEntry(alias) {
			continue
		}
		e, err := ks.GetTrustedCertificateEntry(alias)
		if err != nil {
			return nil, fmt.Errorf("JKS entry %q: %w", alias, err)
		}
		c, err := x509.ParseCertificate(e.Certificate.Content)
		if err != nil {
			return nil, fmt.Errorf("JKS entry %q: %w", alias, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("the JKS trust store holds no trusted certificate entry")
	}
	return certs, nil
}

// certPool adds the trust store to the system roots. The BDK's trust store
// replaces the JVM's; symbridge adds to the system pool instead, so that a
// store holding only the company CA still reaches a pod with a public
// certificate.
func certPool(certs []*x509.Certificate) *x509.CertPool {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool
}
