package aiproxy

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/url"
	"strings"
	"testing"
)

// A Vertex service account's token exchange is a POST with a form body: the binding must hand the
// body (with method and headers) to the host and pass the endpoint's answer back to the core.
func TestVertexTokenCalloutCarriesItsBody(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	account, _ := json.Marshal(map[string]string{
		"type":           "service_account",
		"private_key_id": "k1",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   "svc@p.iam.gserviceaccount.com",
		"token_uri":      "https://oauth2.googleapis.com/token",
	})
	cfg, _ := json.Marshal(map[string]any{"provider": map[string]any{
		"type": "vertex", "vertexAuthKey": string(account), "vertexRegion": "us-central1",
		"vertexProjectId": "p", "vertexAuthServiceName": "google-oauth",
	}})
	c := mustConfig(t, string(cfg))
	request := chatRequest("gemini-2.0-flash", false, "hi")

	x := mustExchange(t, c)
	r, err := x.OnRequest("POST", "/v1/chat/completions", jsonHeaders, request)
	if err != nil || r.Action != Callout {
		t.Fatalf("%+v %v", r, err)
	}
	if r.Cluster != "google-oauth" || r.Authority != "oauth2.googleapis.com" || r.Path != "/token" ||
		r.Method != "POST" || r.header("content-type") != "application/x-www-form-urlencoded" {
		t.Fatalf("callout = %+v", r)
	}
	form, err := url.ParseQuery(string(r.Body))
	if err != nil || form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		t.Fatalf("callout body %q: %v", r.Body, err)
	}
	// The assertion is an RS256 JWT the key's public half verifies (Go's crypto/rsa, not ours).
	parts := strings.Split(form.Get("assertion"), ".")
	if len(parts) != 3 {
		t.Fatalf("assertion %q", form.Get("assertion"))
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
		t.Fatalf("JWT signature: %v", err)
	}

	answer := []byte(`{"access_token": "ya29.from-the-callout", "expires_in": 3600, "token_type": "Bearer"}`)
	r, err = x.OnCalloutResponse(200, answer)
	if err != nil || r.Action != Forward || r.Authority != "us-central1-aiplatform.googleapis.com" ||
		r.header("authorization") != "Bearer ya29.from-the-callout" {
		t.Fatalf("%+v %v", r, err)
	}

	// The token is cached per configuration: the next request goes straight out with it.
	y := mustExchange(t, c)
	r, err = y.OnRequest("POST", "/v1/chat/completions", jsonHeaders, request)
	if err != nil || r.Action != Forward || r.header("authorization") != "Bearer ya29.from-the-callout" {
		t.Fatalf("%+v %v", r, err)
	}
}

func (r RequestResult) header(name string) string {
	for _, h := range r.Headers {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}
