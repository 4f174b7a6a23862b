module github.com/hwcaudit/hwcaudit

go 1.26.8

require (
	github.com/huaweicloud/huaweicloud-sdk-go-v3 v0.1.207 // indirect
	github.com/sethvargo/go-envconfig v1.4.3 // indirect
)
