// Command openapi-check fails when an OpenAPI document is not valid, as
// kin-openapi (the library the HTTP host validates requests with) reads it:
//
//	go run ./scripts/openapi-check doc/api/openapi.yaml
//
// `make lint` runs it on the contract. Exit status 1 on an invalid document,
// 2 on bad usage.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/getkin/kin-openapi/openapi3"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: openapi-check FILE")
		os.Exit(2)
	}
	if err := check(os.Args[1]); err != nil {
		fmt.Fprintf(os.Stderr, "openapi-check: %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	fmt.Printf("openapi-check: %s is a valid OpenAPI document\n", os.Args[1])
}

// check loads the document (references resolved) and validates it.
func check(path string) error {
	doc, err := openapi3.NewLoader().LoadFromFile(path)
	if err != nil {
		return err
	}
	return doc.Validate(context.Background())
}
