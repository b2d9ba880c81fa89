# toolchain/bearssl_mips16.mk: the BearSSL members that toolchain/deps.sh
# compiles as MIPS16 on the MIPS targets (mips_24kc.mk, mipsel_24kc.mk
# include it): code that parses, dispatches and keeps state, run a few
# times per handshake or record, where MIPS16 takes about a third off for
# a small slowdown. What a handshake spends its time in stays 32-bit
# MIPS: the elliptic-curve and big-integer arithmetic (ec_*, ecdsa_*_raw,
# i31/i15/i32, rsa_*_pub/priv/modulus), the ciphers, MACs and hashes
# (aes*, chacha20, poly1305, ghash, sha*, md5, hmac's compressions), and
# the byte-order helpers they call in their loops (enc*/dec*, ccopy).
# toolchain/mips_24kc_m16.mk builds all of BearSSL as MIPS16 instead.
# Names are the sources' base names (src/*/NAME.c, src/NAME.c); deps.sh stops on a
# name BearSSL does not have.
# - TLS engine: the T0-interpreted handshakes, the record layer's framing
#   (the bulk cipher is called through its vtable), session cache, PRF
#   and key-export glue, the default-engine set-up, certificate handlers.
# - X.509 and keys: the T0-interpreted chain validator and decoders, the
#   PEM decoder, DER encoders.
# - signatures: format conversion and padding around the arithmetic.
# - glue: the handshake transcript's hash set (multihash: buffering, the
#   compressions stay 32-bit), HMAC's set-up, the DRBG, /dev/urandom.
BEARSSL_MIPS16 = \
	ssl_hs_client ssl_hs_server ssl_engine ssl_io ssl_lru ssl_hashes \
	ssl_client ssl_client_full ssl_client_default_rsapub \
	ssl_server ssl_server_full_ec ssl_server_full_rsa \
	ssl_server_mine2c ssl_server_mine2g ssl_server_minf2c ssl_server_minf2g \
	ssl_server_minr2g ssl_server_minu2g ssl_server_minv2g \
	ssl_scert_single_ec ssl_scert_single_rsa ssl_ccert_single_ec ssl_ccert_single_rsa \
	ssl_engine_default_aescbc ssl_engine_default_aesccm ssl_engine_default_aesgcm \
	ssl_engine_default_chapol ssl_engine_default_descbc ssl_engine_default_ec \
	ssl_engine_default_ecdsa ssl_engine_default_rsavrfy \
	ssl_rec_cbc ssl_rec_ccm ssl_rec_chapol ssl_rec_gcm ssl_keyexport \
	prf prf_md5sha1 prf_sha256 prf_sha384 \
	x509_minimal x509_minimal_full x509_decoder x509_knownkey skey_decoder \
	asn1enc encode_ec_pk8der encode_ec_rawder encode_rsa_pk8der encode_rsa_rawder \
	pemdec pemenc settings multihash hmac hmac_drbg sysrng \
	ecdsa_atr ecdsa_rta ecdsa_i31_sign_asn1 ecdsa_i31_vrfy_asn1 \
	ecdsa_i15_sign_asn1 ecdsa_i15_vrfy_asn1 ecdsa_default_sign_asn1 \
	ecdsa_default_sign_raw ecdsa_default_vrfy_asn1 ecdsa_default_vrfy_raw \
	rsa_pkcs1_sig_pad rsa_pkcs1_sig_unpad rsa_ssl_decrypt rsa_oaep_pad rsa_oaep_unpad \
	rsa_default_modulus rsa_default_pkcs1_sign rsa_default_pkcs1_vrfy \
	rsa_default_priv rsa_default_privexp rsa_default_pub rsa_default_pubexp \
	rsa_default_keygen rsa_default_oaep_decrypt rsa_default_oaep_encrypt
