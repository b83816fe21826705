// Command hello is a stand-in darwin executable for the packaging tests.
package main

import "fmt"

func main() { fmt.Println("hello from a packaged darwin binary") }
