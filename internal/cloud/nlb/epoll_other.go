//go:build !linux

package nlb

import "errors"

// epollSupported tells newDataPath that only netPath runs on this platform.
const epollSupported = false

func newEpollPath(string) (dataPath, error) {
	return nil, errors.New("the epoll data path needs Linux")
}
