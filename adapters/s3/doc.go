// Package s3 implements the object ports of project storage
// (ports.ObjectStore, ports.ObjectPresigner, ports.MultipartUploads) on any
// S3-compatible store with aws-sdk-go-v2: a custom endpoint and path-style
// addressing for gateways (versitygw in `gpuaas dev` and the tests, MinIO,
// Ceph), the SDK's transfer manager for large uploads (multipart, with a
// bounded number of part buffers, so an upload is streamed and never held
// whole), and presigned requests for direct transfers.
package s3
