package kafkasink

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
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl/scram"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hwcaudit/hwcaudit/sinks/kafkasink/kafkatest"
)

// testCA makes a CA and a server certificate for 127.0.0.1, and writes the
// CA to a PEM file for HWCAUDIT_KAFKA_TLS_CA_FILE.
func testCA(t *testing.T) (server tls.Certificate, pool *x509.CertPool, caFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hwcaudit test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool, caFile
}

// TestSASLOverTLS is the setup Huawei DMS for Kafka uses: SASL_SSL with
// SCRAM, the broker's certificate checked against a configured CA.
func TestSASLOverTLS(t *testing.T) {
	cert, pool, caFile := testCA(t)
	_, addr := newCluster(t,
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}),
		kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "audit", "s3cret-pass"),
		kfake.SeedTopics(1, "audit"))

	s := newSink(t, config(t, addr, "audit", map[string]string{
		"HWCAUDIT_KAFKA_TLS":            "true",
		"HWCAUDIT_KAFKA_TLS_CA_FILE":    caFile,
		"HWCAUDIT_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
		"HWCAUDIT_KAFKA_SASL_USERNAME":  "audit",
		"HWCAUDIT_KAFKA_SASL_PASSWORD":  "s3cret-pass",
	}))
	if err := write(t, s, testBatch("tls/a", 5, 10)); err != nil {
		t.Fatal(err)
	}
	mech, err := scram.Mechanism(scram.SHA512, "audit", "s3cret-pass")
	if err != nil {
		t.Fatal(err)
	}
	got := kafkatest.ReadAllWith(t, addr, &kafka.Dialer{Timeout: 10 * time.Second, SASLMechanism: mech,
		TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}})
	if len(got) != 5 {
		t.Fatalf("read %d records over TLS, want 5", len(got))
	}

	// Without the CA the broker's certificate must not be trusted.
	untrusted := newSink(t, config(t, addr, "audit", map[string]string{
		"HWCAUDIT_KAFKA_TLS":            "true",
		"HWCAUDIT_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
		"HWCAUDIT_KAFKA_SASL_USERNAME":  "audit",
		"HWCAUDIT_KAFKA_SASL_PASSWORD":  "s3cret-pass",
		"HWCAUDIT_KAFKA_WRITE_TIMEOUT":  "2s",
	}))
	err = write(t, untrusted, testBatch("tls/b", 1, 10))
	if err == nil {
		t.Fatal("a broker with an unknown CA was trusted")
	}
	if strings.Contains(err.Error(), "s3cret-pass") {
		t.Errorf("error shows the password: %v", err)
	}
}
