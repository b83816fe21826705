package protocol

import "crypto/tls"

// TLS12CipherSuites are the only suites the directory offers with TLS 1.2,
// and the ones its clients should offer: forward-secret AEAD suites (no
// CBC, no SHA-1 MAC, no RSA key exchange). TLS 1.3's suites are all AEAD
// and not configurable.
var TLS12CipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}
