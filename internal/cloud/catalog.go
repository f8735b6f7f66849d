package cloud

import (
	"slices"
	"time"
)

// instanceType is one entry of the fixed instance type catalog. CPUs is the
// advertised vCPU count; a member's real CPU quota is CPUs × Config.CPUPerVCPU.
type instanceType struct {
	ID     string
	Family string
	Size   string
	CPUs   int64
	Memory int64 // bytes
}

const gib = 1 << 30

// instanceTypes is the catalog served by GET /instance-type. IDs are fixed so
// that they survive restarts and can be written into configuration.
var instanceTypes = []instanceType{
	{ID: "b6cd1ff5-3a2f-4e9d-a4d1-8988c1191fe8", Family: "standard", Size: "micro", CPUs: 1, Memory: gib / 2},
	{ID: "b6e9d1e8-89fc-4db3-aaa4-9b4c5b1d0844", Family: "standard", Size: "tiny", CPUs: 1, Memory: 1 * gib},
	{ID: "21624abb-764e-4def-81d7-9fc54b5957fb", Family: "standard", Size: "small", CPUs: 2, Memory: 2 * gib},
	{ID: "b6e9d1e8-89fc-4db3-aaa4-9b4c5b1d0845", Family: "standard", Size: "medium", CPUs: 2, Memory: 4 * gib},
	{ID: "c6f99499-7f59-4138-9427-a09db13af2bc", Family: "standard", Size: "large", CPUs: 4, Memory: 8 * gib},
}

// template is one entry of the fixed template catalog.
type template struct {
	ID          string
	Name        string
	Family      string
	Version     string
	DefaultUser string
}

// templates is the catalog served by GET /template: the public templates
// that Exoscale's clients, examples and account defaults name (the CLI's
// --template and an account's defaultTemplate are looked up by name).
var templates = []template{
	{ID: "c19542b7-d269-4bd4-bf7c-2cae36d066d3", Name: "Linux Ubuntu 24.04 LTS 64-bit", Family: "ubuntu", Version: "24.04", DefaultUser: "ubuntu"},
	{ID: "5e5a8a3c-7d0e-4b6f-9a4f-2f0e7c3b9d11", Name: "Linux Debian 12 (Bookworm) 64-bit", Family: "debian", Version: "12", DefaultUser: "debian"},
	{ID: "0c2c4b5e-2f5d-4b8a-9d3e-6a1f2b7c8d90", Name: "Linux Ubuntu 22.04 LTS 64-bit", Family: "ubuntu", Version: "22.04", DefaultUser: "ubuntu"},
	{ID: "7a4e1d2c-3b6f-4c9a-8e5d-1f2a3b4c5d6e", Name: "Linux Ubuntu 20.04 LTS 64-bit", Family: "ubuntu", Version: "20.04", DefaultUser: "ubuntu"},
	{ID: "9b8c7d6e-5f4a-4b3c-9d2e-1a0b9c8d7e6f", Name: "Linux Debian 11 (Bullseye) 64-bit", Family: "debian", Version: "11", DefaultUser: "debian"},
}

// catalogTime is the creation date reported for catalog templates.
var catalogTime = time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)

func findInstanceType(id string) (instanceType, bool) {
	for _, t := range instanceTypes {
		if t.ID == id {
			return t, true
		}
	}
	return instanceType{}, false
}

func findTemplate(id string) (template, bool) {
	for _, t := range templates {
		if t.ID == id {
			return t, true
		}
	}
	return template{}, false
}

func (t instanceType) api() *apiInstanceType {
	return &apiInstanceType{
		ID: t.ID, Family: t.Family, Size: t.Size, CPUs: t.CPUs, Memory: t.Memory,
		Authorized: true, Zones: slices.Clone(Zones),
	}
}

func (t template) api() *apiTemplate {
	return &apiTemplate{
		ID: t.ID, Name: t.Name, Family: t.Family, Version: t.Version, Build: t.Version + "-tidepool",
		Description: t.Name + " (local tidepool cloud: runs `tidepool app`)",
		Maintainer:  "tidepool", DefaultUser: t.DefaultUser, BootMode: "uefi", Visibility: "public",
		Size: 10 * gib, SSHKey: true, CreatedAt: catalogTime, Zones: slices.Clone(Zones),
	}
}
