package bom

// cksumTable is the MSB-first table of the POSIX cksum(1) CRC-32,
// polynomial 0x04C11DB7. It is not the reflected CRC-32 of zlib and gzip.
var cksumTable = func() (t [256]uint32) {
	for i := range t {
		c := uint32(i) << 24
		for range 8 {
			if c&0x80000000 != 0 {
				c = c<<1 ^ 0x04C11DB7
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// Cksum computes the checksum POSIX cksum(1) prints, the one a Bom stores
// per file. It is an io.Writer; Sum32 may be called at any point.
type Cksum struct {
	crc uint32
	n   uint64
}

// Write adds p to the checksum; it never fails.
func (c *Cksum) Write(p []byte) (int, error) {
	crc := c.crc
	for _, b := range p {
		crc = crc<<8 ^ cksumTable[byte(crc>>24)^b]
	}
	c.crc = crc
	c.n += uint64(len(p))
	return len(p), nil
}

// Sum32 returns the checksum of everything written so far: the CRC
// continued over the length in little-endian bytes (as few as needed),
// then inverted.
func (c *Cksum) Sum32() uint32 {
	crc := c.crc
	for n := c.n; n != 0; n >>= 8 {
		crc = crc<<8 ^ cksumTable[byte(crc>>24)^byte(n)]
	}
	return ^crc
}

// Checksum returns the POSIX cksum(1) CRC of data.
func Checksum(data []byte) uint32 {
	var c Cksum
	c.Write(data)
	return c.Sum32()
}
