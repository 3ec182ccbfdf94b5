module github.com/fledge-flags/fledge

go 1.26.8
