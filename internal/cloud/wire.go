package cloud

import (
	"time"
)

// Wire types: the JSON shapes of the Exoscale API v2 subset this cloud
// serves. Field names and enum values follow the OpenAPI spec
// (components/schemas) so that the official egoscale v3 client decodes them
// unchanged. Only the fields this cloud fills are declared.

type apiRef struct {
	ID string `json:"id"`
}

type apiZone struct {
	Name        string `json:"name"`
	APIEndpoint string `json:"api-endpoint"`
	SOSEndpoint string `json:"sos-endpoint,omitempty"`
}

type apiInstanceType struct {
	ID         string   `json:"id"`
	Family     string   `json:"family"`
	Size       string   `json:"size"`
	CPUs       int64    `json:"cpus"`
	Memory     int64    `json:"memory"`
	Authorized bool     `json:"authorized"`
	Zones      []string `json:"zones"`
}

type apiTemplate struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Family      string    `json:"family,omitempty"`
	Maintainer  string    `json:"maintainer,omitempty"`
	DefaultUser string    `json:"default-user,omitempty"`
	BootMode    string    `json:"boot-mode,omitempty"`
	Visibility  string    `json:"visibility"`
	Size        int64     `json:"size,omitempty"`
	Version     string    `json:"version,omitempty"`
	Build       string    `json:"build,omitempty"`
	SSHKey      bool      `json:"ssh-key-enabled"`
	Password    bool      `json:"password-enabled"`
	AppSnapshot bool      `json:"application-consistent-snapshot-enabled"`
	CreatedAt   time.Time `json:"created-at"`
	Zones       []string  `json:"zones"`
}

type apiManager struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

type apiInstance struct {
	ID                 string            `json:"id"`
	Name               string            `json:"name"`
	State              string            `json:"state"`
	PublicIP           string            `json:"public-ip,omitempty"`
	PublicIPAssignment string            `json:"public-ip-assignment"`
	MACAddress         string            `json:"mac-address"`
	CreatedAt          time.Time         `json:"created-at"`
	DiskSize           int64             `json:"disk-size,omitempty"`
	Labels             map[string]string `json:"labels,omitempty"`
	Manager            *apiManager       `json:"manager,omitempty"`
	InstanceType       *apiInstanceType  `json:"instance-type,omitempty"`
	Template           *apiTemplate      `json:"template,omitempty"`
	// Always false here; the CLI dereferences them.
	SecurebootEnabled bool `json:"secureboot-enabled"`
	TPMEnabled        bool `json:"tpm-enabled"`
	DiskEncrypted     bool `json:"disk-encrypted"`
	AppSnapshot       bool `json:"application-consistent-snapshot-enabled"`
}

type apiInstancePool struct {
	ID                 string            `json:"id"`
	Name               string            `json:"name"`
	Description        string            `json:"description,omitempty"`
	State              string            `json:"state"`
	Size               int64             `json:"size"`
	InstancePrefix     string            `json:"instance-prefix"`
	DiskSize           int64             `json:"disk-size,omitempty"`
	MinAvailable       int64             `json:"min-available"`
	PublicIPAssignment string            `json:"public-ip-assignment"`
	Labels             map[string]string `json:"labels,omitempty"`
	InstanceType       *apiInstanceType  `json:"instance-type,omitempty"`
	Template           *apiTemplate      `json:"template,omitempty"`
	Instances          []apiRef          `json:"instances"`
	IPv6Enabled        bool              `json:"ipv6-enabled"`
	AppSnapshot        bool              `json:"application-consistent-snapshot-enabled"`
}

// apiHealthcheck is load-balancer-service-healthcheck; interval and timeout
// are in seconds. It is also the persisted form.
type apiHealthcheck struct {
	Mode     string `json:"mode"`
	Port     int64  `json:"port"`
	URI      string `json:"uri,omitempty"`
	Interval int64  `json:"interval"`
	Timeout  int64  `json:"timeout"`
	Retries  int64  `json:"retries"`
	TLSSNI   string `json:"tls-sni,omitempty"`
}

type apiServerStatus struct {
	PublicIP string `json:"public-ip"`
	Status   string `json:"status"`
}

type apiService struct {
	ID                string            `json:"id"`
	Name              string            `json:"name"`
	Description       string            `json:"description,omitempty"`
	State             string            `json:"state"`
	Protocol          string            `json:"protocol"`
	Strategy          string            `json:"strategy"`
	Port              int64             `json:"port"`
	TargetPort        int64             `json:"target-port"`
	InstancePool      *apiRef           `json:"instance-pool,omitempty"`
	Healthcheck       *apiHealthcheck   `json:"healthcheck,omitempty"`
	HealthcheckStatus []apiServerStatus `json:"healthcheck-status"`
}

type apiLoadBalancer struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	State       string            `json:"state"`
	IP          string            `json:"ip,omitempty"`
	CreatedAt   time.Time         `json:"created-at"`
	Labels      map[string]string `json:"labels,omitempty"`
	Services    []apiService      `json:"services"`
}

type apiOperationRef struct {
	ID      string `json:"id"`
	Link    string `json:"link,omitempty"`
	Command string `json:"command,omitempty"`
}

type apiOperation struct {
	ID        string           `json:"id"`
	State     string           `json:"state"`
	Reason    string           `json:"reason,omitempty"`
	Message   string           `json:"message,omitempty"`
	Reference *apiOperationRef `json:"reference,omitempty"`
}

type apiError struct {
	Message string `json:"message"`
}

// Request bodies. Pointers distinguish "absent" from zero where the API
// treats absence as "leave unchanged" or "required".

type createPoolRequest struct {
	Name           string            `json:"name"`
	Description    string            `json:"description"`
	Size           *int64            `json:"size"`
	InstanceType   *apiRef           `json:"instance-type"`
	Template       *apiRef           `json:"template"`
	InstancePrefix string            `json:"instance-prefix"`
	DiskSize       int64             `json:"disk-size"`
	MinAvailable   int64             `json:"min-available"`
	Labels         map[string]string `json:"labels"`
}

type updatePoolRequest struct {
	Name           *string           `json:"name"`
	Description    *string           `json:"description"`
	InstanceType   *apiRef           `json:"instance-type"`
	Template       *apiRef           `json:"template"`
	InstancePrefix *string           `json:"instance-prefix"`
	DiskSize       *int64            `json:"disk-size"`
	MinAvailable   *int64            `json:"min-available"`
	Labels         map[string]string `json:"labels"`
}

type scalePoolRequest struct {
	Size *int64 `json:"size"`
}

type loadBalancerRequest struct {
	Name        *string           `json:"name"`
	Description *string           `json:"description"`
	Labels      map[string]string `json:"labels"`
}

type serviceRequest struct {
	Name         *string         `json:"name"`
	Description  *string         `json:"description"`
	Protocol     *string         `json:"protocol"`
	Strategy     *string         `json:"strategy"`
	Port         *int64          `json:"port"`
	TargetPort   *int64          `json:"target-port"`
	InstancePool *apiRef         `json:"instance-pool"`
	Healthcheck  *apiHealthcheck `json:"healthcheck"`
}
