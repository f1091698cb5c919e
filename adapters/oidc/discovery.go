package oidc

import (
	"context"
	"net/http"
	"sync"

	"github.com/coreos/go-oidc/v3/oidc"
)

// metadata is the part of the issuer's discovery document this package uses.
type metadata struct {
	provider      *oidc.Provider
	authURL       string
	tokenURL      string
	jwksURL       string
	revocationURL string
}

// discoverer fetches the discovery document once, on first use, and retries
// on the next call after a failure (see the package comment for why it is
// lazy). Concurrent callers share one fetch.
type discoverer struct {
	issuer string
	hc     *http.Client

	mu   sync.Mutex
	meta *metadata
}

func (d *discoverer) get(ctx context.Context) (*metadata, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.meta != nil {
		return d.meta, nil
	}
	// go-oidc checks that the document's issuer equals ours exactly.
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, d.hc), d.issuer)
	if err != nil {
		return nil, err
	}
	var extra struct {
		JWKSURL       string `json:"jwks_uri"`
		RevocationURL string `json:"revocation_endpoint"`
	}
	if err := p.Claims(&extra); err != nil {
		return nil, err
	}
	ep := p.Endpoint()
	d.meta = &metadata{
		provider:      p,
		authURL:       ep.AuthURL,
		tokenURL:      ep.TokenURL,
		jwksURL:       extra.JWKSURL,
		revocationURL: extra.RevocationURL,
	}
	return d.meta, nil
}
