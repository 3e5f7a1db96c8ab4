//go:build ignore

// Golden-file generator for mpc-wire's tests. It marshals the callback structs of the product
// guide with Go's own encoding/json, signs with Go's crypto/ecdsa, and encrypts with Go's
// crypto/aes + cipher.NewCTR, so the Rust side is checked against the reference runtime rather
// than against itself. The tests only read the files written here; Go is not needed to run
// them.
//
// Regenerate (Debian 12 `golang-go`, go1.19, the version of the reference vectors):
//
//	cd crates/wire/tests/golden && go run gen.go
//
// Signatures and ECIES ciphertexts are randomized, so a rerun changes those files (the tests
// verify/decrypt them instead of comparing bytes); everything else is deterministic.
package main

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"runtime"
	"strings"
)

// The request and response structs, with the field list, order and tags of the guide's
// current callback structs (sign_type and tx_info in RequestDetail).

type Check struct {
	CallbackId    string `json:"callback_id,omitempty"`
	RequestType   string `json:"request_type,omitempty"`
	RequestDetail `json:"request_detail,omitempty"`
	ExtraInfo     `json:"extra_info,omitempty"`
}

type RequestDetail struct {
	T            int             `json:"t,omitempty"`
	N            int             `json:"n,omitempty"`
	Cryptography string          `json:"cryptography,omitempty"`
	PartyIds     []string        `json:"party_ids,omitempty"`
	SignType     string          `json:"sign_type,omitempty"`
	PublicKey    string          `json:"public_key,omitempty"`
	Path         string          `json:"path,omitempty"`
	Message      string          `json:"message,omitempty"`
	Signature    string          `json:"signature,omitempty"`
	TxInfo       json.RawMessage `json:"tx_info,omitempty"`
}

type ExtraInfo struct {
	SinoId    string `json:"sino_id,omitempty"`
	RequestId string `json:"request_id,omitempty"`
}

type Response struct {
	Status    string        `json:"status,omitempty"`
	Error     string        `json:"error,omitempty"`
	Data      *ResponseData `json:"data,omitempty"`
	Signature string        `json:"signature,omitempty"`
}

type ResponseData struct {
	CallbackId string `json:"callback_id,omitempty"`
	SinoId     string `json:"sino_id,omitempty"`
	RequestId  string `json:"request_id,omitempty"`
	Action     string `json:"action,omitempty"`
	WaitTime   string `json:"wait_time,omitempty"`
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func marshal(v interface{}) []byte {
	b, err := json.Marshal(v)
	must(err)
	return b
}

func write(name string, b []byte) {
	must(os.WriteFile(name, b, 0o644))
}

func writeJSON(name string, v interface{}) {
	b, err := json.MarshalIndent(v, "", " ")
	must(err)
	write(name, append(b, '\n'))
}

func read(name string) []byte {
	b, err := os.ReadFile(name)
	must(err)
	return b
}

func privateKey(path string) *ecdsa.PrivateKey {
	rest := read(path)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			panic("no EC PRIVATE KEY in " + path)
		}
		if block.Type == "EC PRIVATE KEY" {
			k, err := x509.ParseECPrivateKey(block.Bytes)
			must(err)
			return k
		}
	}
}

func signHex(k *ecdsa.PrivateKey, msg []byte) (string, bool) {
	h := sha256.Sum256(msg)
	sig, err := ecdsa.SignASN1(rand.Reader, k, h[:])
	must(err)
	// High-S check: re-parse s from the DER.
	var parsed struct{ R, S *big.Int }
	_, err = asn1.Unmarshal(sig, &parsed)
	must(err)
	half := new(big.Int).Rsh(elliptic.P256().Params().N, 1)
	return hex.EncodeToString(sig), parsed.S.Cmp(half) > 0
}

func nodeID(pub *ecdsa.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	must(err)
	return "sino" + base64.StdEncoding.EncodeToString([]byte(hex.EncodeToString(der)))
}

// ---------------------------------------------------------------------------------------------
// Check requests and responses

const pubKeySecp = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"

func checks() map[string]Check {
	return map[string]Check{
		"check_keygen.json": {
			CallbackId:  "6f1c2a9e-0b7d-4c1e-9a52-1f0e8b7c3d21",
			RequestType: "keygen",
			RequestDetail: RequestDetail{
				T: 3, N: 3, Cryptography: "ecdsa-secp256k1", PartyIds: []string{"a", "b", "c"},
			},
			ExtraInfo: ExtraInfo{SinoId: "1720000000000000001", RequestId: "kg-1"},
		},
		"check_sign_type1.json": {
			CallbackId:  "cb-sign-1",
			RequestType: "sign",
			RequestDetail: RequestDetail{
				SignType: "1", PublicKey: pubKeySecp, Path: "m/1/1/0/5",
				Message: "9c12cfdc04c74584d787ac3d23772132c18524bc7ab28dec4219b8fc5b425f70",
				TxInfo:  read("tx_info_sign1.input.json"),
			},
			ExtraInfo: ExtraInfo{SinoId: "3511280000000001", RequestId: "req-<1>&2"},
		},
		"check_sign_type2.json": {
			CallbackId:  "cb-sign-2",
			RequestType: "sign",
			RequestDetail: RequestDetail{
				SignType: "2", PublicKey: pubKeySecp, Path: "m/1/1/60/0",
				Message: "0x1901f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090fc52c0ee5d84264471806290a3f2c4cecfc5490626bf912d01f240d7a274b371e",
				TxInfo:  read("tx_info_sign2.input.json"),
			},
			ExtraInfo: ExtraInfo{SinoId: "3511280000000002", RequestId: "r-eip712-7"},
		},
		"check_sign_type3.json": {
			CallbackId:  "cb-sign-3",
			RequestType: "bip340-schnorr-sign",
			RequestDetail: RequestDetail{
				SignType: "3", PublicKey: pubKeySecp, Path: "m/1/1/0/0",
				Message: "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
				TxInfo:  read("tx_info_sign3.input.json"),
			},
			ExtraInfo: ExtraInfo{SinoId: "3511280000000003", RequestId: "r-raw-3"},
		},
		"check_taproot.json": {
			CallbackId:  "cb-sign-4",
			RequestType: "taproot-sign",
			RequestDetail: RequestDetail{
				SignType: "3", PublicKey: pubKeySecp, Path: "m/1/1/0/1",
				Message: "abababababababababababababababababababababababababababababababab",
			},
			ExtraInfo: ExtraInfo{SinoId: "3511280000000004"},
		},
		"check_rawdata_signature.json": {
			CallbackId: "cb-sign-3",
			RequestDetail: RequestDetail{
				Message:   "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
				Signature: "04d65a93977caa3d1b081852ff57a79e465f1660577304baead505dd3a48589cf350185e895372df6221ea3a137557e473fddb6755f05bd507c3c533fce9c91285000102030405060708090a0b0c0d0e0fb97ab9f87ae4758e6bc0a33a0eb474cdb80762c27d900e4e9bf3b645b88078887310fa58",
			},
			ExtraInfo: ExtraInfo{SinoId: "3511280000000003", RequestId: "r-raw-3"},
		},
		"check_escapes.json": {
			CallbackId:  "c\"b\\-\x00\x01\x08\x0c\x1f\x7f-\n\r\t",
			RequestType: "sign",
			RequestDetail: RequestDetail{
				T: -1, N: 9007199254740993, SignType: "2", PartyIds: []string{"", "<b>", "\u2028"},
				Message: "<html>&amp;</html> \u2027\u2028\u2029\u202a é 你好 🎉 \ufffd",
				Path:    "m/0",
			},
		},
		"check_empty.json": {},
	}
}

func responses() map[string]Response {
	return map[string]Response{
		"response_status_only.json":  {Status: "0"},
		"response_server_error.json": {Status: "400", Error: "verify signature failed"},
		"response_empty_data.json":   {Data: &ResponseData{}},
		"response_unsigned.json": {Status: "0", Data: &ResponseData{
			CallbackId: "cb-1", SinoId: "s<1>", RequestId: "r&1", Action: "APPROVE", WaitTime: "",
		}},
	}
}

// Responses signed by Go with server_sec1.pem, answering the Check in the same entry. At
// least one low-S and one high-S signature are kept.
type signedResponse struct {
	Name     string `json:"name"`
	Request  string `json:"request"`
	Response string `json:"response"`
	HighS    bool   `json:"high_s"`
}

func signedResponses(server *ecdsa.PrivateKey) []signedResponse {
	req := Check{
		CallbackId: "cb-<go>&\u2028", RequestType: "sign",
		RequestDetail: RequestDetail{SignType: "1", Message: "ab"},
		ExtraInfo:     ExtraInfo{SinoId: "s-é", RequestId: "r-你好"},
	}
	echo := func(action, wait string) *ResponseData {
		return &ResponseData{CallbackId: req.CallbackId, SinoId: req.SinoId, RequestId: req.RequestId, Action: action, WaitTime: wait}
	}
	cases := []struct {
		name, errText string
		data          *ResponseData
	}{
		{"approve", "", echo("APPROVE", "")},
		{"approve_mixed_case", "", echo("Approve", "")},
		{"reject", "amount above limit <1 BTC> & not whitelisted", echo("REJECT", "")},
		{"wait", "", echo("WAIT", "60")},
	}
	var out []signedResponse
	for _, wantHigh := range []bool{false, true} {
		for _, c := range cases {
			for {
				sig, high := signHex(server, marshal(c.data))
				if high != wantHigh {
					continue
				}
				resp := Response{Status: "0", Error: c.errText, Data: c.data, Signature: sig}
				out = append(out, signedResponse{
					Name: fmt.Sprintf("%s_high_s_%v", c.name, high), Request: string(marshal(req)),
					Response: string(marshal(resp)), HighS: high,
				})
				break
			}
		}
	}
	return out
}

// A request signed by Go with the node key (p256_sec1.pem) over its Go marshalling.
type signedRequest struct {
	Body      string `json:"body"`
	Signature string `json:"signature"`
	HighS     bool   `json:"high_s"`
}

func signedRequests(node *ecdsa.PrivateKey) []signedRequest {
	body := read("check_sign_type1.json")
	var out []signedRequest
	for _, wantHigh := range []bool{false, true} {
		for {
			sig, high := signHex(node, body)
			if high == wantHigh {
				out = append(out, signedRequest{Body: string(body), Signature: sig, HighS: high})
				break
			}
		}
	}
	return out
}

// ---------------------------------------------------------------------------------------------
// Escaping and RawMessage compaction, input by input

type stringVector struct {
	InHex string `json:"in_hex"`
	Out   string `json:"out"`
}

func stringVectors() []stringVector {
	var inputs []string
	for b := 0; b < 0x80; b++ {
		inputs = append(inputs, string([]byte{'x', byte(b), 'y'}))
	}
	inputs = append(inputs,
		"", "\u2028\u2029", "\u2027\u202a", "é你好🎉", "\ufffd", "\x80", "\xff", "a\xe2\x80",
		"\xe2\x80\xa8\xe2\x80", "\xed\xa0\x80", "\xc0\xaf", "\xf4\x90\x80\x80", "\xf0\x9f\x8e",
		"\xf0\x9f\x8e\x89\xf0", "\xe2\x28\xa1", "<&>'\"\\/",
	)
	var out []stringVector
	for _, s := range inputs {
		out = append(out, stringVector{InHex: hex.EncodeToString([]byte(s)), Out: string(marshal(s))})
	}
	return out
}

type compactVector struct {
	InHex  string `json:"in_hex"`
	Ok     bool   `json:"ok"`
	OutHex string `json:"out_hex,omitempty"`
}

func compactVectors() []compactVector {
	inputs := []string{
		"", " ", "null", " true ", "false", "0", "-0", "01", "-", "1.", ".5", "1.5e+3", "1E-3", "1e",
		"+1", "1 2", "[]", "[ ]", "[1,]", "[,1]", "{}", "{ }", "{,}", `{"a"}`, `{"a":}`, `{"a":1,}`,
		`{"a":1 "b":2}`, "{a:1}", `{'a':1}`, "tru", "nul", "True", "NaN", `"abc`, `"\x"`,
		`"\u12g4"`, `"\u00e9\/\b\f\n\r\t\"\\"`, "\"a\nb\"", "\"\t\"", "\"\x7f\"", "{} {}",
		"\xef\xbb\xbf{}", "[1]x", "\"<&>\"", "\"\xe2\x80\xa8\xe2\x80\xa9\"", "\"\xe2\x80\"",
		"\"\xff\xfe\"", "\"\xed\xa0\x80\"", " \r\n\t{ \"k<\" : [ 1 , { \"z\" : null } ] }\r\n",
		`{"dup":1,"dup":2}`, `[1e400, -1.0E+2, 123456789012345678901234567890]`,
		"{\"a\":\"\xe2\x80\xa8\"}", "\xe2\x80\xa8", "[\"\\u2028\"]", "\"\\\xe2\x80\xa8\"",
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		strings.Repeat(`{"a":`, 3) + "1" + strings.Repeat("}", 3),
		string(read("tx_info_sign1.input.json")),
		string(read("tx_info_sign2.input.json")),
		string(read("tx_info_sign3.input.json")),
	}
	var out []compactVector
	for _, in := range inputs {
		b, err := json.Marshal(struct {
			R json.RawMessage `json:"r"`
		}{json.RawMessage([]byte(in))})
		v := compactVector{InHex: hex.EncodeToString([]byte(in)), Ok: err == nil}
		if err == nil {
			inner := b[len(`{"r":`) : len(b)-1]
			v.OutHex = hex.EncodeToString(inner)
		}
		out = append(out, v)
	}
	return out
}

// ---------------------------------------------------------------------------------------------
// ECIES made with Go's AES-CTR and HMAC: the composition of go-ethereum's crypto/ecies for
// P-256 (ECIES_AES128_SHA256, empty s1/s2), written here from its specification.

type eciesVector struct {
	PrivatePEM string `json:"private_pem"`
	PlainHex   string `json:"plain_hex"`
	CipherHex  string `json:"cipher_hex"`
}

func eciesEncrypt(pub *ecdsa.PublicKey, m, iv []byte) []byte {
	curve := elliptic.P256()
	eph, err := ecdsa.GenerateKey(curve, rand.Reader)
	must(err)
	zx, _ := curve.ScalarMult(pub.X, pub.Y, eph.D.Bytes())
	z := make([]byte, 32)
	zx.FillBytes(z)
	var ctr [4]byte
	binary.BigEndian.PutUint32(ctr[:], 1)
	k := sha256.Sum256(append(ctr[:], z...))
	km := sha256.Sum256(k[16:])
	block, err := aes.NewCipher(k[:16])
	must(err)
	c := make([]byte, len(m))
	cipher.NewCTR(block, iv).XORKeyStream(c, m)
	em := append(append([]byte{}, iv...), c...)
	mac := hmac.New(sha256.New, km[:])
	mac.Write(em)
	out := elliptic.Marshal(curve, eph.X, eph.Y)
	out = append(out, em...)
	return mac.Sum(out)
}

func eciesVectors(privPEM string, k *ecdsa.PrivateKey) []eciesVector {
	ivs := [][]byte{
		make([]byte, 16),
		[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe},
		[]byte{0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		nil,
	}
	var out []eciesVector
	for i, iv := range ivs {
		if iv == nil {
			iv = make([]byte, 16)
			_, err := rand.Read(iv)
			must(err)
		}
		m := make([]byte, []int{0, 65, 100, 7}[i])
		_, err := rand.Read(m)
		must(err)
		out = append(out, eciesVector{
			PrivatePEM: privPEM,
			PlainHex:   hex.EncodeToString(m),
			CipherHex:  hex.EncodeToString(eciesEncrypt(&k.PublicKey, m, iv)),
		})
	}
	return out
}

// ---------------------------------------------------------------------------------------------

func main() {
	for name, c := range checks() {
		write(name, marshal(c))
	}
	for name, r := range responses() {
		write(name, marshal(r))
	}
	server := privateKey("../data/server_sec1.pem")
	node := privateKey("../data/p256_sec1.pem")
	writeJSON("go_signed_responses.json", signedResponses(server))
	writeJSON("go_signed_requests.json", signedRequests(node))
	writeJSON("go_string_vectors.json", stringVectors())
	writeJSON("go_compact_vectors.json", compactVectors())
	writeJSON("go_ecies_vectors.json", eciesVectors("p256_sec1.pem", node))
	writeJSON("go_node_ids.json", map[string]string{
		"go_version":        runtime.Version(),
		"p256_public.pem":   nodeID(&node.PublicKey),
		"server_public.pem": nodeID(&server.PublicKey),
	})
	fmt.Println("golden files written with", runtime.Version())
}
