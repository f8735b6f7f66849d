//go:build linux

// The epoll data path's raw system calls.

package nlb

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The data path's system calls go through RawSyscall: on non-blocking
// sockets none of them blocks, so the scheduler need not be told (Syscall's
// entersyscall/exitsyscall). Telling it cost more than the calls: a
// goroutine leaving a system call can wake the runtime's monitor thread,
// which then polls every 20µs for a while. With it, the loops used 1.7x
// HAProxy's CPU per request on kept-alive connections; without, the same.

// optOn is the int 1 passed to setsockopt(2).
var optOn int32 = 1

// errnoErr returns nil for 0, else e (as an error, without allocating:
// errno values are small).
func errnoErr(e syscall.Errno) error {
	if e != 0 {
		return e
	}
	return nil
}

// raw is a non-blocking system call without pointer arguments; err is nil
// or a syscall.Errno. (Calls passing pointers call syscall.RawSyscall
// directly, which keeps the pointed-to memory alive during the call.)
func raw(trap, a1, a2, a3 uintptr) (uintptr, error) {
	r, _, e := syscall.RawSyscall(trap, a1, a2, a3)
	return r, errnoErr(e)
}

// raw6 is raw with six arguments.
func raw6(trap, a1, a2, a3, a4, a5, a6 uintptr) (uintptr, error) {
	r, _, e := syscall.RawSyscall6(trap, a1, a2, a3, a4, a5, a6)
	return r, errnoErr(e)
}

// closeFD closes a socket (never blocks: no SO_LINGER is set).
func closeFD(fd int) { raw(unix.SYS_CLOSE, uintptr(fd), 0, 0) }

// rawRead is read(2) on a non-blocking descriptor.
func rawRead(fd int, p []byte) (int, error) {
	r, _, e := syscall.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	return int(r), errnoErr(e)
}

// rawWrite is write(2) on a non-blocking socket, as send(2) with
// MSG_NOSIGNAL: a peer that reset the connection gives EPIPE without a
// SIGPIPE to deliver (and ignore).
func rawWrite(fd int, p []byte) (int, error) {
	r, _, e := syscall.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)), unix.MSG_NOSIGNAL, 0, 0)
	return int(r), errnoErr(e)
}

// epollWaitNow is epoll_wait(2) with a zero timeout: it never blocks.
func epollWaitNow(epfd int, events []unix.EpollEvent) (int, error) {
	r, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(unsafe.SliceData(events))), uintptr(len(events)), 0, 0, 0)
	return int(r), errnoErr(e)
}
